//! Integration tests: the real handlers, over HTTP and the real AWS SDK, against moto.
//! Run through `make test`, which starts moto and sets `CUBA_TEST_MOTO_ENDPOINT`.

mod admin;
mod api;
mod contract;
mod deliveries;
mod faults;
mod grouping;
mod harness;
mod heartbeats;
mod heavy_user;
mod locality;
mod migration;
mod pre_traffic;
mod privilege;
mod receipts;
mod redrive;
mod rule_health;
mod runtime;
mod schemas;
mod seed_rules;
mod silences;
mod smoke;
mod stack;
mod tokens;
mod traces;
mod ui;
mod windows;
