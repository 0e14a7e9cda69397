//! The shape every Hyperscale server shares: config, logs, metrics, health, shutdown, supervision
//!
//! (Being built.)
#![warn(missing_docs)]
