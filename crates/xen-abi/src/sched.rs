//! `sched.h`: `HYPERVISOR_sched_op(cmd, arg)`.

use crate::wire::xen_struct;
use crate::DomId;

/// `SCHEDOP_yield`: give up the CPU; stay runnable. No argument.
pub const SCHEDOP_YIELD: u64 = 0;
/// `SCHEDOP_block`: block until an event is pending (clears the upcall mask). No argument.
pub const SCHEDOP_BLOCK: u64 = 1;
/// `SCHEDOP_shutdown`: end the calling domain; argument [`SchedShutdown`].
pub const SCHEDOP_SHUTDOWN: u64 = 2;
/// `SCHEDOP_poll`: block until one of a set of ports is pending or a timeout; argument
/// [`SchedPoll`].
pub const SCHEDOP_POLL: u64 = 3;
/// `SCHEDOP_remote_shutdown`: shut another domain down (privileged); argument
/// [`SchedRemoteShutdown`].
pub const SCHEDOP_REMOTE_SHUTDOWN: u64 = 4;
/// `SCHEDOP_shutdown_code`: record the reason for a later shutdown; argument [`SchedShutdown`].
pub const SCHEDOP_SHUTDOWN_CODE: u64 = 5;
/// `SCHEDOP_watchdog`: create, feed or destroy a domain watchdog; argument [`SchedWatchdog`].
pub const SCHEDOP_WATCHDOG: u64 = 6;
/// `SCHEDOP_pin_override`: temporarily pin the vCPU (dom0 only); argument [`SchedPinOverride`].
pub const SCHEDOP_PIN_OVERRIDE: u64 = 7;

/// `SHUTDOWN_poweroff`: exited normally; clean up and destroy.
pub const SHUTDOWN_POWEROFF: u32 = 0;
/// `SHUTDOWN_reboot`: clean up, destroy, then restart.
pub const SHUTDOWN_REBOOT: u32 = 1;
/// `SHUTDOWN_suspend`: clean up, save the suspend information, destroy.
pub const SHUTDOWN_SUSPEND: u32 = 2;
/// `SHUTDOWN_crash`: the guest crashed.
pub const SHUTDOWN_CRASH: u32 = 3;
/// `SHUTDOWN_watchdog`: restart because the watchdog expired.
pub const SHUTDOWN_WATCHDOG: u32 = 4;
/// `SHUTDOWN_soft_reset`: reset the domain's state but keep its memory (kexec).
pub const SHUTDOWN_SOFT_RESET: u32 = 5;
/// `SHUTDOWN_MAX`: the highest valid reason.
pub const SHUTDOWN_MAX: u32 = 5;

xen_struct! {
    /// `struct sched_shutdown` (`SCHEDOP_shutdown`, `SCHEDOP_shutdown_code`).
    pub struct SchedShutdown: 4 bytes {
        /// `SHUTDOWN_*`.
        pub reason @ 0: u32,
    }

    /// `struct sched_poll` (`SCHEDOP_poll`).
    pub struct SchedPoll: 24 bytes {
        /// Guest address of an array of `evtchn_port_t` (u32).
        pub ports @ 0: u64,
        /// Entries in `ports`.
        pub nr_ports @ 8: u32,
        /// Absolute system time (ns) at which to give up; 0 waits forever.
        pub timeout @ 16: u64,
    }

    /// `struct sched_remote_shutdown` (`SCHEDOP_remote_shutdown`).
    pub struct SchedRemoteShutdown: 8 bytes {
        /// The domain to shut down.
        pub domain_id @ 0: DomId,
        /// `SHUTDOWN_*`.
        pub reason @ 4: u32,
    }

    /// `struct sched_watchdog` (`SCHEDOP_watchdog`).
    pub struct SchedWatchdog: 8 bytes {
        /// Watchdog id (0 creates one; the call returns its id).
        pub id @ 0: u32,
        /// Seconds until expiry (0 destroys the watchdog).
        pub timeout @ 4: u32,
    }

    /// `struct sched_pin_override` (`SCHEDOP_pin_override`).
    pub struct SchedPinOverride: 4 bytes {
        /// Physical CPU to pin to; negative removes the override.
        pub pcpu @ 0: i32,
    }
}
