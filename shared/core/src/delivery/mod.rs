//! Delivering what a rule fires: the alert and its ledger entry ([`alert`]), delivery itself
//! (claim, check the recipient and the SMS limits, mark `sending`, publish, settle: [`alerting`]),
//! what may be sent and how much ([`limits`]), SMS held through the user's night ([`quiet_hours`]),
//! carriers' receipts for sent SMS ([`receipts`], taken in by [`receipt_desk`]), operator alerts
//! silenced for a while ([`silences`]) or gathered into one message per interval ([`grouping`]),
//! how carriers count an SMS ([`sms`]), phone verification ([`verification`]), and the ports
//! these need ([`ports`]).

pub mod alert;
pub mod alerting;
pub mod grouping;
pub mod limits;
pub mod ports;
pub mod quiet_hours;
pub mod receipt_desk;
pub mod receipts;
pub mod silences;
pub mod sms;
pub mod verification;
