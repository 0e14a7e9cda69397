//! Errors: input that cannot be parsed, and assumptions that make no sense.

use thiserror::Error;

/// A value on the command line (or in a config) that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// No number at the start of the text.
    #[error("`{text}` is not a number: write e.g. 300M, 1.5e8 or 100_000")]
    NotANumber {
        /// The text given.
        text: String,
    },
    /// A number followed by a unit we do not know.
    #[error("`{text}` has an unknown unit: use {expected}")]
    UnknownUnit {
        /// The text given.
        text: String,
        /// The units accepted.
        expected: &'static str,
    },
    /// A number outside the meaningful range.
    #[error("`{text}` is out of range: expected {expected}")]
    OutOfRange {
        /// The text given.
        text: String,
        /// The range accepted.
        expected: &'static str,
    },
}

/// An estimate whose assumptions are contradictory or meaningless.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum EstimateError {
    /// A numeric assumption is NaN, infinite, negative or out of its range.
    #[error("assumption `{name}` is {value}, but it must be {expected}")]
    Invalid {
        /// The assumption's name, as on the command line.
        name: &'static str,
        /// The value given.
        value: f64,
        /// The range accepted.
        expected: &'static str,
    },
    /// No preset with that name.
    #[error(
        "no preset named `{0}`: choose one of twitter, shortener, crawler, adclick, autocomplete"
    )]
    UnknownPreset(String),
}
