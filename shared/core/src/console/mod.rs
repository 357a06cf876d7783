//! What the ops console reads and tries: the per-minute activity tally ([`activity`]), the dry
//! run ([`tryout`]) and the backtest ([`backtest`]), both through the same decision as the live
//! engine, the listing ports ([`ports`]) and the pages the listings across everyone are written in
//! ([`listing_pages`]), and the redrive of stream records whose retries ran
//! out ([`redrive`]), and each rule's health ([`rule_health`]).

pub mod activity;
pub mod backtest;
pub mod listing_pages;
pub mod ports;
pub mod redrive;
pub mod rule_health;
pub mod tryout;
