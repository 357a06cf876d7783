//! The core on the memory ports, in one test binary: the port contract, the stream consumer
//! and the absence checker end to end, fault injection at every step, the agreement of live
//! evaluation, dry run and backtest, and of window and expectation buckets with the scans they
//! replaced.

mod absences;
mod common;
mod contract;
mod decisions;
mod faults;
mod group_windows;
mod grouping;
mod heartbeats;
mod pipeline;
mod quiet_hours;
mod receipts;
mod silences;
mod smoke;
mod traces;
mod windows;
