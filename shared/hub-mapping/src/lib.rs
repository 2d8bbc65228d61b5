//! The conversion engine: compile a conversion schema once, apply it to many records.
