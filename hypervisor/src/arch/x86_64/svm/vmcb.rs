//! The VMCB (AMD64 APM Vol. 2, Appendix B): control area at 0x000, state-save area at
//! 0x400, one 4 KiB page per vCPU. Field offsets are checked at compile time.

use bitflags::bitflags;
use core::mem::{offset_of, size_of};

bitflags! {
    /// Intercept vector 3 (offset 0x00c).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Intercept1: u32 {
        const INTR = 1 << 0;
        const NMI = 1 << 1;
        const SMI = 1 << 2;
        const INIT = 1 << 3;
        const VINTR = 1 << 4;
        const CR0_SEL_WRITE = 1 << 5;
        const RDTSC = 1 << 14;
        const RDPMC = 1 << 15;
        const CPUID = 1 << 18;
        const RSM = 1 << 19;
        const INVD = 1 << 22;
        const PAUSE = 1 << 23;
        const HLT = 1 << 24;
        const INVLPGA = 1 << 26;
        const IOIO_PROT = 1 << 27;
        const MSR_PROT = 1 << 28;
        const TASK_SWITCH = 1 << 29;
        const FERR_FREEZE = 1 << 30;
        const SHUTDOWN = 1 << 31;
    }

    /// Intercept vector 4 (offset 0x010).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Intercept2: u32 {
        const VMRUN = 1 << 0;
        const VMMCALL = 1 << 1;
        const VMLOAD = 1 << 2;
        const VMSAVE = 1 << 3;
        const STGI = 1 << 4;
        const CLGI = 1 << 5;
        const SKINIT = 1 << 6;
        const RDTSCP = 1 << 7;
        const ICEBP = 1 << 8;
        const WBINVD = 1 << 9;
        const MONITOR = 1 << 10;
        const MWAIT = 1 << 11;
        const MWAIT_CONDITIONAL = 1 << 12;
        const XSETBV = 1 << 13;
    }

    /// Virtual interrupt control (offset 0x060).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct InterruptControl: u64 {
        const V_IRQ = 1 << 8;
        const V_IGN_TPR = 1 << 20;
        /// V_INTR_VECTOR, bits 39:32: the vector a virtual interrupt (V_IRQ) delivers.
        const V_INTR_VECTOR = 0xff << 32;
        /// Physical interrupts are masked by the host's RFLAGS.IF while the guest runs,
        /// and the guest's IF only masks virtual interrupts.
        const V_INTR_MASKING = 1 << 24;
    }
}

/// TLB_CONTROL values (offset 0x05c).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum TlbControl {
    DoNothing = 0,
    FlushAll = 1,
}

/// EVENTINJ / EXITINTINFO encoding (APM Vol. 2 §15.20).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventInjection(pub u64);

impl EventInjection {
    const VALID: u64 = 1 << 31;
    const ERROR_CODE_VALID: u64 = 1 << 11;
    const TYPE_INTERRUPT: u64 = 0 << 8;
    const TYPE_EXCEPTION: u64 = 3 << 8;
    const TYPE_MASK: u64 = 7 << 8;

    pub fn exception(vector: u8, error_code: Option<u32>) -> Self {
        let mut value = Self::VALID | Self::TYPE_EXCEPTION | u64::from(vector);
        if let Some(code) = error_code {
            value |= Self::ERROR_CODE_VALID | (u64::from(code) << 32);
        }
        EventInjection(value)
    }

    pub fn is_valid(self) -> bool {
        self.0 & Self::VALID != 0
    }

    pub fn vector(self) -> u8 {
        self.0 as u8
    }

    /// An external (maskable) interrupt. QEMU records a virtual interrupt whose delivery
    /// an exit interrupted as an "exception" with its vector (32 or above), which no real
    /// exception has, so that counts as an interrupt too.
    pub fn is_external_interrupt(self) -> bool {
        let kind = self.0 & Self::TYPE_MASK;
        self.is_valid() && (kind == Self::TYPE_INTERRUPT || (kind == Self::TYPE_EXCEPTION && self.vector() >= 32))
    }
}

/// A segment register in the state-save area.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Segment {
    pub selector: u16,
    /// Compressed attributes: type/S/DPL/P in bits 0-7, AVL/L/DB/G in bits 8-11.
    pub attributes: u16,
    pub limit: u32,
    pub base: u64,
}

impl Segment {
    pub const fn new(selector: u16, attributes: u16, limit: u32, base: u64) -> Self {
        Segment { selector, attributes, limit, base }
    }
}

#[repr(C)]
pub struct ControlArea {
    pub intercept_cr_read: u16,
    pub intercept_cr_write: u16,
    pub intercept_dr_read: u16,
    pub intercept_dr_write: u16,
    pub intercept_exceptions: u32,
    pub intercept1: Intercept1,
    pub intercept2: Intercept2,
    pub intercept3: u32,
    _reserved_018: [u8; 0x03c - 0x018],
    pub pause_filter_threshold: u16,
    pub pause_filter_count: u16,
    pub iopm_base_pa: u64,
    pub msrpm_base_pa: u64,
    pub tsc_offset: u64,
    pub guest_asid: u32,
    pub tlb_control: u8,
    _reserved_05d: [u8; 3],
    pub interrupt_control: InterruptControl,
    pub interrupt_shadow: u64,
    pub exit_code: u64,
    pub exit_info1: u64,
    pub exit_info2: u64,
    pub exit_int_info: u64,
    pub nested_control: u64,
    pub avic_apic_bar: u64,
    pub ghcb_pa: u64,
    pub event_injection: u64,
    pub nested_cr3: u64,
    pub virt_ext: u64,
    pub clean_bits: u32,
    _reserved_0c4: u32,
    pub next_rip: u64,
    pub instruction_bytes_fetched: u8,
    pub instruction_bytes: [u8; 15],
    _reserved_0e0: [u8; 0x400 - 0x0e0],
}

#[repr(C)]
pub struct StateSaveArea {
    pub es: Segment,
    pub cs: Segment,
    pub ss: Segment,
    pub ds: Segment,
    pub fs: Segment,
    pub gs: Segment,
    pub gdtr: Segment,
    pub ldtr: Segment,
    pub idtr: Segment,
    pub tr: Segment,
    _reserved_0a0: [u8; 0xcb - 0xa0],
    pub cpl: u8,
    _reserved_0cc: u32,
    pub efer: u64,
    _reserved_0d8: [u8; 0x148 - 0xd8],
    pub cr4: u64,
    pub cr3: u64,
    pub cr0: u64,
    pub dr7: u64,
    pub dr6: u64,
    pub rflags: u64,
    pub rip: u64,
    _reserved_180: [u8; 0x1d8 - 0x180],
    pub rsp: u64,
    pub s_cet: u64,
    pub ssp: u64,
    pub isst_addr: u64,
    pub rax: u64,
    pub star: u64,
    pub lstar: u64,
    pub cstar: u64,
    pub sfmask: u64,
    pub kernel_gs_base: u64,
    pub sysenter_cs: u64,
    pub sysenter_esp: u64,
    pub sysenter_eip: u64,
    pub cr2: u64,
    _reserved_248: [u8; 0x268 - 0x248],
    pub g_pat: u64,
    pub dbgctl: u64,
    pub br_from: u64,
    pub br_to: u64,
    pub last_exception_from: u64,
    pub last_exception_to: u64,
    _reserved_298: [u8; 0xc00 - 0x298],
}

#[repr(C, align(4096))]
pub struct Vmcb {
    pub control: ControlArea,
    pub save: StateSaveArea,
}

const _: () = {
    assert!(size_of::<ControlArea>() == 0x400);
    assert!(size_of::<StateSaveArea>() == 0xc00);
    assert!(size_of::<Vmcb>() == 0x1000);
    assert!(offset_of!(ControlArea, intercept1) == 0x00c);
    assert!(offset_of!(ControlArea, intercept2) == 0x010);
    assert!(offset_of!(ControlArea, pause_filter_count) == 0x03e);
    assert!(offset_of!(ControlArea, iopm_base_pa) == 0x040);
    assert!(offset_of!(ControlArea, msrpm_base_pa) == 0x048);
    assert!(offset_of!(ControlArea, tsc_offset) == 0x050);
    assert!(offset_of!(ControlArea, guest_asid) == 0x058);
    assert!(offset_of!(ControlArea, tlb_control) == 0x05c);
    assert!(offset_of!(ControlArea, interrupt_control) == 0x060);
    assert!(offset_of!(ControlArea, interrupt_shadow) == 0x068);
    assert!(offset_of!(ControlArea, exit_code) == 0x070);
    assert!(offset_of!(ControlArea, exit_info1) == 0x078);
    assert!(offset_of!(ControlArea, exit_info2) == 0x080);
    assert!(offset_of!(ControlArea, exit_int_info) == 0x088);
    assert!(offset_of!(ControlArea, nested_control) == 0x090);
    assert!(offset_of!(ControlArea, event_injection) == 0x0a8);
    assert!(offset_of!(ControlArea, nested_cr3) == 0x0b0);
    assert!(offset_of!(ControlArea, clean_bits) == 0x0c0);
    assert!(offset_of!(ControlArea, next_rip) == 0x0c8);
    assert!(offset_of!(ControlArea, instruction_bytes) == 0x0d1);
    assert!(offset_of!(StateSaveArea, tr) == 0x090);
    assert!(offset_of!(StateSaveArea, cpl) == 0x0cb);
    assert!(offset_of!(StateSaveArea, efer) == 0x0d0);
    assert!(offset_of!(StateSaveArea, cr4) == 0x148);
    assert!(offset_of!(StateSaveArea, rflags) == 0x170);
    assert!(offset_of!(StateSaveArea, rip) == 0x178);
    assert!(offset_of!(StateSaveArea, rsp) == 0x1d8);
    assert!(offset_of!(StateSaveArea, rax) == 0x1f8);
    assert!(offset_of!(StateSaveArea, kernel_gs_base) == 0x220);
    assert!(offset_of!(StateSaveArea, cr2) == 0x240);
    assert!(offset_of!(StateSaveArea, g_pat) == 0x268);
    assert!(offset_of!(StateSaveArea, last_exception_to) == 0x290);
};
