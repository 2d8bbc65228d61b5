//! Message envelopes between functions (see ARCHITECTURE.md). Filled in with the functions that
//! produce and consume them.
