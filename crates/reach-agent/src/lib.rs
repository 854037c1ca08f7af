//! The Reach agent: connects out to the server, answers consent, streams media and shares USB.
#![warn(missing_docs)]
