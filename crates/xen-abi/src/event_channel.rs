//! `event_channel.h`: `HYPERVISOR_event_channel_op(cmd, arg)`, the 2-level and FIFO ABIs'
//! constants.

use crate::wire::xen_struct;
use crate::DomId;

/// `evtchn_port_t`: an event-channel port.
pub type EvtchnPort = u32;

/// `EVTCHNOP_bind_interdomain`: connect to a remote domain's unbound port; argument
/// [`EvtchnBindInterdomain`].
pub const EVTCHNOP_BIND_INTERDOMAIN: u64 = 0;
/// `EVTCHNOP_bind_virq`: argument [`EvtchnBindVirq`].
pub const EVTCHNOP_BIND_VIRQ: u64 = 1;
/// `EVTCHNOP_bind_pirq`: argument [`EvtchnBindPirq`].
pub const EVTCHNOP_BIND_PIRQ: u64 = 2;
/// `EVTCHNOP_close`: argument [`EvtchnClose`].
pub const EVTCHNOP_CLOSE: u64 = 3;
/// `EVTCHNOP_send`: argument [`EvtchnSend`].
pub const EVTCHNOP_SEND: u64 = 4;
/// `EVTCHNOP_status`: argument [`EvtchnStatus`].
pub const EVTCHNOP_STATUS: u64 = 5;
/// `EVTCHNOP_alloc_unbound`: argument [`EvtchnAllocUnbound`].
pub const EVTCHNOP_ALLOC_UNBOUND: u64 = 6;
/// `EVTCHNOP_bind_ipi`: argument [`EvtchnBindIpi`].
pub const EVTCHNOP_BIND_IPI: u64 = 7;
/// `EVTCHNOP_bind_vcpu`: argument [`EvtchnBindVcpu`].
pub const EVTCHNOP_BIND_VCPU: u64 = 8;
/// `EVTCHNOP_unmask`: argument [`EvtchnUnmask`].
pub const EVTCHNOP_UNMASK: u64 = 9;
/// `EVTCHNOP_reset`: close all of a domain's ports; argument [`EvtchnReset`].
pub const EVTCHNOP_RESET: u64 = 10;
/// `EVTCHNOP_init_control`: switch to the FIFO ABI; argument [`EvtchnInitControl`].
pub const EVTCHNOP_INIT_CONTROL: u64 = 11;
/// `EVTCHNOP_expand_array`: add a FIFO event-array page; argument [`EvtchnExpandArray`].
pub const EVTCHNOP_EXPAND_ARRAY: u64 = 12;
/// `EVTCHNOP_set_priority`: argument [`EvtchnSetPriority`].
pub const EVTCHNOP_SET_PRIORITY: u64 = 13;

/// `EVTCHNSTAT_closed`: the port is not in use.
pub const EVTCHNSTAT_CLOSED: u32 = 0;
/// `EVTCHNSTAT_unbound`: waiting for an interdomain connection.
pub const EVTCHNSTAT_UNBOUND: u32 = 1;
/// `EVTCHNSTAT_interdomain`: connected to a remote domain.
pub const EVTCHNSTAT_INTERDOMAIN: u32 = 2;
/// `EVTCHNSTAT_pirq`: bound to a physical IRQ.
pub const EVTCHNSTAT_PIRQ: u32 = 3;
/// `EVTCHNSTAT_virq`: bound to a virtual IRQ.
pub const EVTCHNSTAT_VIRQ: u32 = 4;
/// `EVTCHNSTAT_ipi`: bound to a virtual IPI.
pub const EVTCHNSTAT_IPI: u32 = 5;

/// `BIND_PIRQ__WILL_SHARE` in [`EvtchnBindPirq::flags`]: the IRQ may be shared.
pub const BIND_PIRQ__WILL_SHARE: u32 = 1;

/// `EVTCHN_2L_NR_CHANNELS`: ports of the 2-level ABI on 64-bit guests (64 × 64).
pub const EVTCHN_2L_NR_CHANNELS: u32 = 4096;

/// `EVTCHN_FIFO_PRIORITY_MAX`: the highest priority (lowest number).
pub const EVTCHN_FIFO_PRIORITY_MAX: u32 = 0;
/// `EVTCHN_FIFO_PRIORITY_DEFAULT`.
pub const EVTCHN_FIFO_PRIORITY_DEFAULT: u32 = 7;
/// `EVTCHN_FIFO_PRIORITY_MIN`: the lowest priority.
pub const EVTCHN_FIFO_PRIORITY_MIN: u32 = 15;
/// `EVTCHN_FIFO_MAX_QUEUES`: one queue per priority.
pub const EVTCHN_FIFO_MAX_QUEUES: usize = 16;
/// `EVTCHN_FIFO_PENDING`: bit number of "pending" in an event word.
pub const EVTCHN_FIFO_PENDING: u32 = 31;
/// `EVTCHN_FIFO_MASKED`: bit number of "masked".
pub const EVTCHN_FIFO_MASKED: u32 = 30;
/// `EVTCHN_FIFO_LINKED`: bit number of "linked".
pub const EVTCHN_FIFO_LINKED: u32 = 29;
/// `EVTCHN_FIFO_BUSY`: bit number of "busy".
pub const EVTCHN_FIFO_BUSY: u32 = 28;
/// `EVTCHN_FIFO_LINK_BITS`: width of the link field of an event word.
pub const EVTCHN_FIFO_LINK_BITS: u32 = 17;
/// `EVTCHN_FIFO_LINK_MASK`.
pub const EVTCHN_FIFO_LINK_MASK: u32 = (1 << EVTCHN_FIFO_LINK_BITS) - 1;
/// `EVTCHN_FIFO_NR_CHANNELS`: ports of the FIFO ABI.
pub const EVTCHN_FIFO_NR_CHANNELS: u32 = 1 << EVTCHN_FIFO_LINK_BITS;

xen_struct! {
    /// `struct evtchn_alloc_unbound`: allocate a port that `remote_dom` may bind to.
    pub struct EvtchnAllocUnbound: 8 bytes {
        /// IN: the domain that gets the port (`DOMID_SELF` unless privileged).
        pub dom @ 0: DomId,
        /// IN: the domain allowed to connect.
        pub remote_dom @ 2: DomId,
        /// OUT: the new port.
        pub port @ 4: EvtchnPort,
    }

    /// `struct evtchn_bind_interdomain`.
    pub struct EvtchnBindInterdomain: 12 bytes {
        /// IN: the remote domain.
        pub remote_dom @ 0: DomId,
        /// IN: its unbound port.
        pub remote_port @ 4: EvtchnPort,
        /// OUT: the new local port.
        pub local_port @ 8: EvtchnPort,
    }

    /// `struct evtchn_bind_virq`.
    pub struct EvtchnBindVirq: 12 bytes {
        /// IN: `VIRQ_*`.
        pub virq @ 0: u32,
        /// IN: the vCPU (0 for global VIRQs).
        pub vcpu @ 4: u32,
        /// OUT: the new port.
        pub port @ 8: EvtchnPort,
    }

    /// `struct evtchn_bind_pirq`.
    pub struct EvtchnBindPirq: 12 bytes {
        /// IN: the physical IRQ.
        pub pirq @ 0: u32,
        /// IN: `BIND_PIRQ__*`.
        pub flags @ 4: u32,
        /// OUT: the new port.
        pub port @ 8: EvtchnPort,
    }

    /// `struct evtchn_bind_ipi`.
    pub struct EvtchnBindIpi: 8 bytes {
        /// IN: the vCPU that receives the IPI.
        pub vcpu @ 0: u32,
        /// OUT: the new port.
        pub port @ 4: EvtchnPort,
    }

    /// `struct evtchn_close`.
    pub struct EvtchnClose: 4 bytes {
        /// IN: the port.
        pub port @ 0: EvtchnPort,
    }

    /// `struct evtchn_send`.
    pub struct EvtchnSend: 4 bytes {
        /// IN: the local port to signal (the event goes to its peer).
        pub port @ 0: EvtchnPort,
    }

    /// The union `u` of `struct evtchn_status`, as raw bytes (see the accessors).
    #[repr(align(4))]
    pub struct EvtchnStatusU: 8 bytes {
        /// The union's bytes.
        pub raw @ 0: [u8; 8],
    }

    /// `struct evtchn_status`.
    pub struct EvtchnStatus: 24 bytes {
        /// IN: the domain (`DOMID_SELF` unless privileged).
        pub dom @ 0: DomId,
        /// IN: the port.
        pub port @ 4: EvtchnPort,
        /// OUT: `EVTCHNSTAT_*`.
        pub status @ 8: u32,
        /// OUT: the vCPU the port notifies.
        pub vcpu @ 12: u32,
        /// OUT: details, depending on `status`.
        pub u @ 16: EvtchnStatusU,
    }

    /// `struct evtchn_bind_vcpu`.
    pub struct EvtchnBindVcpu: 8 bytes {
        /// IN: the port.
        pub port @ 0: EvtchnPort,
        /// IN: the vCPU to notify from now on.
        pub vcpu @ 4: u32,
    }

    /// `struct evtchn_unmask`.
    pub struct EvtchnUnmask: 4 bytes {
        /// IN: the port.
        pub port @ 0: EvtchnPort,
    }

    /// `struct evtchn_reset`.
    pub struct EvtchnReset: 2 bytes {
        /// IN: the domain (`DOMID_SELF` unless privileged).
        pub dom @ 0: DomId,
    }

    /// `struct evtchn_init_control`.
    pub struct EvtchnInitControl: 24 bytes {
        /// IN: guest frame of the FIFO control block.
        pub control_gfn @ 0: u64,
        /// IN: offset of the control block in that frame.
        pub offset @ 8: u32,
        /// IN: the vCPU.
        pub vcpu @ 12: u32,
        /// OUT: `EVTCHN_FIFO_LINK_BITS` of the hypervisor.
        pub link_bits @ 16: u8,
        /// Padding.
        pub _pad @ 17: [u8; 7],
    }

    /// `struct evtchn_expand_array`.
    pub struct EvtchnExpandArray: 8 bytes {
        /// IN: guest frame of the new event-array page.
        pub array_gfn @ 0: u64,
    }

    /// `struct evtchn_set_priority`.
    pub struct EvtchnSetPriority: 8 bytes {
        /// IN: the port.
        pub port @ 0: EvtchnPort,
        /// IN: `EVTCHN_FIFO_PRIORITY_*` range.
        pub priority @ 4: u32,
    }

    /// `struct evtchn_fifo_control_block`: per-vCPU FIFO state.
    pub struct EvtchnFifoControlBlock: 72 bytes {
        /// Bit `q` set: queue `q` has events.
        pub ready @ 0: u32,
        /// Reserved.
        pub _rsvd @ 4: u32,
        /// Head port of each queue.
        pub head @ 8: [u32; 16],
    }
}

impl EvtchnStatusU {
    fn u16_at(&self, at: usize) -> u16 {
        u16::from_le_bytes([self.raw[at], self.raw[at + 1]])
    }

    fn u32_at(&self, at: usize) -> u32 {
        u32::from_le_bytes([self.raw[at], self.raw[at + 1], self.raw[at + 2], self.raw[at + 3]])
    }

    /// `u.unbound.dom` (`EVTCHNSTAT_unbound`): the domain allowed to connect.
    pub fn unbound_dom(&self) -> DomId {
        self.u16_at(0)
    }

    /// `u.interdomain` (`EVTCHNSTAT_interdomain`): the remote domain and port.
    pub fn interdomain(&self) -> (DomId, EvtchnPort) {
        (self.u16_at(0), self.u32_at(4))
    }

    /// `u.pirq` (`EVTCHNSTAT_pirq`).
    pub fn pirq(&self) -> u32 {
        self.u32_at(0)
    }

    /// `u.virq` (`EVTCHNSTAT_virq`).
    pub fn virq(&self) -> u32 {
        self.u32_at(0)
    }

    /// The union holding `u.unbound`.
    pub fn from_unbound(dom: DomId) -> Self {
        let mut raw = [0u8; 8];
        raw[..2].copy_from_slice(&dom.to_le_bytes());
        EvtchnStatusU { raw }
    }

    /// The union holding `u.interdomain`.
    pub fn from_interdomain(dom: DomId, port: EvtchnPort) -> Self {
        let mut raw = [0u8; 8];
        raw[..2].copy_from_slice(&dom.to_le_bytes());
        raw[4..].copy_from_slice(&port.to_le_bytes());
        EvtchnStatusU { raw }
    }

    /// The union holding `u.pirq`.
    pub fn from_pirq(pirq: u32) -> Self {
        let mut raw = [0u8; 8];
        raw[..4].copy_from_slice(&pirq.to_le_bytes());
        EvtchnStatusU { raw }
    }

    /// The union holding `u.virq`.
    pub fn from_virq(virq: u32) -> Self {
        Self::from_pirq(virq)
    }
}
