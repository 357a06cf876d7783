//! What the ops console reads and tries: the per-minute activity tally ([`activity`]), the dry
//! run ([`tryout`]) and the backtest ([`backtest`]), both through the same decision as the live
//! engine, and the listing ports ([`ports`]).

pub mod activity;
pub mod backtest;
pub mod ports;
pub mod tryout;
