//! argv as the parser reads it: the C runtime's arguments ([`sys::args`](crate::sys::args))
//! behind [`cli::Args`](crate::cli::Args).

use core::ffi::CStr;

use crate::cli::Args;
use crate::sys::args::CArgs;

impl Args for CArgs {
    fn count(&self) -> usize {
        CArgs::count(self)
    }

    fn arg(&self, index: usize) -> &'static CStr {
        CArgs::arg(self, index)
    }
}
