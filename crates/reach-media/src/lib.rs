//! Screen capture, video encoding and input injection for the Reach agent.
#![warn(missing_docs)]
