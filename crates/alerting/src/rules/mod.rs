//! Recording and alerting rules: the file format ([`mod@file`]), the alert
//! state machine ([`alert`]), `ALERTS_FOR_STATE` ([`for_state`]), one group's evaluation ([`group`]) and the
//! scheduler ([`manager`]).

pub mod alert;
pub mod file;
pub mod for_state;
pub mod group;
pub mod manager;
pub mod notifier;

pub use alert::{Alert, AlertState, LabelSet};
pub use file::{RuleFile, RuleFileError, load_rule_file, parse_rule_file};
pub use group::{GroupState, Health, RuleTransition};
pub use manager::{RuleManager, RuleOptions};
