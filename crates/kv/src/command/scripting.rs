//! Scripting: Lua (EVAL, EVALSHA, SCRIPT) and Redis 7 functions (FCALL).

use super::Spec;

/// The commands of this group.
pub(super) fn specs() -> Vec<Spec> {
    Vec::new()
}
