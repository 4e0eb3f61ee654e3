//! netloop placeholder
