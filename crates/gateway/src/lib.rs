//! An HTTP reverse proxy and API gateway (being built).
#![warn(missing_docs)]
