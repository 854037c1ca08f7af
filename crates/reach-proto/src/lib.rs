//! Wire messages shared by the Reach agent, server and viewers.
//!
//! Sans-IO: this crate only defines and encodes messages; it never touches sockets or clocks.
#![deny(missing_docs)]
