//! The local APIC each vCPU sees, in xAPIC mode (MMIO at 0xFEE00000, emulated by
//! `exit::mmio`) or x2APIC mode (MSRs 0x800-0x8ff): enough for a guest to
//! enumerate and start its other vCPUs (INIT, STARTUP), send fixed IPIs, mask and
//! acknowledge interrupts (TPR, ISR/IRR, EOI), and run the APIC timer. PVH guests take
//! their event upcall on the global callback vector, which bypasses the APIC.

use crate::arch::x86_64::time;
use crate::domain::Domain;
use crate::sched;
use crate::vcpu::Vcpu;

pub const MSR_APIC_BASE: u32 = 0x1b;
const APIC_BASE_BSP: u64 = 1 << 8;
const APIC_BASE_EXTD: u64 = 1 << 10;
const APIC_BASE_ENABLE: u64 = 1 << 11;
const DEFAULT_BASE: u64 = 0xfee0_0000;
pub const X2APIC_FIRST: u32 = 0x800;
pub const X2APIC_LAST: u32 = 0x8ff;

/// x2APIC register numbers (MSR - 0x800).
mod reg {
    pub const ID: u32 = 0x02;
    pub const VERSION: u32 = 0x03;
    pub const TPR: u32 = 0x08;
    pub const PPR: u32 = 0x0a;
    pub const EOI: u32 = 0x0b;
    pub const LDR: u32 = 0x0d;
    pub const SVR: u32 = 0x0f;
    pub const ISR0: u32 = 0x10;
    pub const TMR0: u32 = 0x18;
    pub const IRR0: u32 = 0x20;
    pub const ESR: u32 = 0x28;
    pub const LVT_CMCI: u32 = 0x2f;
    pub const ICR: u32 = 0x30;
    pub const LVT_TIMER: u32 = 0x32;
    pub const LVT_THERMAL: u32 = 0x33;
    pub const LVT_PERF: u32 = 0x34;
    pub const LVT_LINT0: u32 = 0x35;
    pub const LVT_LINT1: u32 = 0x36;
    pub const LVT_ERROR: u32 = 0x37;
    pub const TIMER_INITIAL: u32 = 0x38;
    pub const TIMER_CURRENT: u32 = 0x39;
    pub const TIMER_DIVIDE: u32 = 0x3e;
    pub const SELF_IPI: u32 = 0x3f;
}

const LVT_MASKED: u32 = 1 << 16;
/// xAPIC-only registers (no x2APIC MSR).
const DFR: u32 = 0x0e;
const ICR_HIGH: u32 = 0x31;
/// Marks an ICR value that came from xAPIC MMIO (bit 13 is reserved in the real ICR).
const XAPIC_ICR: u64 = 1 << 13;
const LVT_TIMER_PERIODIC: u32 = 1 << 17;
/// Version 0x14 (integrated APIC), 6 LVT entries (max index 5 + CMCI).
const VERSION: u32 = 0x14 | (6 << 16);
/// The virtual APIC timer counts at 1 GHz before division.
const TIMER_HZ: u64 = 1_000_000_000;

/// ICR fields.
mod icr {
    pub const DELIVERY_MODE: u64 = 0x700;
    pub const FIXED: u64 = 0x000;
    pub const LOWEST: u64 = 0x100;
    pub const NMI: u64 = 0x400;
    pub const INIT: u64 = 0x500;
    pub const STARTUP: u64 = 0x600;
    pub const LOGICAL: u64 = 1 << 11;
    pub const LEVEL_ASSERT: u64 = 1 << 14;
    pub const LEVEL_TRIGGER: u64 = 1 << 15;
    pub const SHORTHAND: u64 = 3 << 18;
    pub const SELF: u64 = 1 << 18;
    pub const ALL: u64 = 2 << 18;
    pub const ALL_BUT_SELF: u64 = 3 << 18;
}

/// One vCPU's local APIC.
#[derive(Debug)]
pub struct VLapic {
    id: u32,
    base: u64,
    tpr: u32,
    svr: u32,
    esr: u32,
    icr: u64,
    /// xAPIC only: logical destination and destination format.
    xapic_ldr: u32,
    xapic_dfr: u32,
    lvt: [u32; 7],
    timer_initial: u32,
    timer_divide: u32,
    /// System time (ns) at which the timer counts down to zero; 0 = stopped.
    timer_deadline_ns: u64,
    timer_period_ns: u64,
    irr: [u32; 8],
    isr: [u32; 8],
    /// INIT received: the vCPU waits for a STARTUP IPI.
    pub wait_for_sipi: bool,
}

/// What writing an APIC register asks of the rest of the domain.
pub enum Effect {
    None,
    Ipi { icr: u64 },
}

fn bit(v: u8) -> (usize, u32) {
    ((v / 32) as usize, 1 << (v % 32))
}

fn highest(bits: &[u32; 8]) -> Option<u8> {
    (0..8).rev().find(|&i| bits[i] != 0).map(|i| (i * 32 + 31 - bits[i].leading_zeros() as usize) as u8)
}

impl VLapic {
    pub fn new(id: u32) -> Self {
        let bsp = if id == 0 { APIC_BASE_BSP } else { 0 };
        VLapic {
            id,
            // Enabled, in xAPIC mode, as firmware leaves it; the guest may switch to x2APIC.
            base: DEFAULT_BASE | APIC_BASE_ENABLE | bsp,
            tpr: 0,
            svr: 0xff,
            esr: 0,
            icr: 0,
            xapic_ldr: 0,
            xapic_dfr: u32::MAX,
            lvt: [LVT_MASKED; 7],
            timer_initial: 0,
            timer_divide: 0,
            timer_deadline_ns: 0,
            timer_period_ns: 0,
            irr: [0; 8],
            isr: [0; 8],
            wait_for_sipi: false,
        }
    }

    pub fn base_msr(&self) -> u64 {
        self.base
    }

    fn x2apic(&self) -> bool {
        self.base & APIC_BASE_EXTD != 0
    }

    /// Writes IA32_APIC_BASE: the APIC stays at its default address and enabled; the guest
    /// may move between xAPIC and x2APIC mode as the SDM allows.
    pub fn set_base_msr(&mut self, value: u64) -> bool {
        let allowed = DEFAULT_BASE | APIC_BASE_ENABLE | APIC_BASE_EXTD | APIC_BASE_BSP;
        if value & !allowed != 0 || value & APIC_BASE_ENABLE == 0 || value & DEFAULT_BASE != DEFAULT_BASE {
            return false;
        }
        // Leaving x2APIC mode straight to xAPIC is invalid (#GP), as on hardware.
        if self.x2apic() && value & APIC_BASE_EXTD == 0 {
            return false;
        }
        self.base = (value & !APIC_BASE_BSP) | (self.base & APIC_BASE_BSP);
        true
    }

    /// Reads the xAPIC register at page offset `offset`.
    pub fn read_mmio(&self, offset: u32) -> u32 {
        let register = offset >> 4;
        match register {
            reg::ID => self.id << 24,
            reg::LDR => self.xapic_ldr,
            DFR => self.xapic_dfr,
            ICR_HIGH => (self.icr >> 32) as u32,
            reg::ICR => self.icr as u32,
            _ => self.read(register).unwrap_or(0) as u32,
        }
    }

    /// Writes the xAPIC register at page offset `offset`.
    pub fn write_mmio(&mut self, offset: u32, value: u32) -> Effect {
        let register = offset >> 4;
        match register {
            reg::LDR => self.xapic_ldr = value & 0xff00_0000,
            DFR => self.xapic_dfr = value | 0x0fff_ffff,
            ICR_HIGH => self.icr = (self.icr & 0xffff_ffff) | (u64::from(value) << 32),
            reg::ICR => {
                // xAPIC destinations are 8 bits in ICR_HIGH[31:24]; 0xff is broadcast.
                let dest = (self.icr >> 56) as u32;
                let dest = if dest == 0xff { u32::MAX } else { dest };
                self.icr = (self.icr & !0xffff_ffff) | u64::from(value);
                return Effect::Ipi { icr: (u64::from(dest) << 32) | u64::from(value) | XAPIC_ICR };
            }
            // Writes to read-only registers are ignored in xAPIC mode.
            _ => return self.write(register, u64::from(value)).unwrap_or(Effect::None),
        }
        Effect::None
    }

    fn ldr(&self) -> u32 {
        ((self.id >> 4) << 16) | (1 << (self.id & 0xf))
    }

    fn ppr(&self) -> u32 {
        let isr_class = highest(&self.isr).map_or(0, |v| u32::from(v) & 0xf0);
        if self.tpr & 0xf0 >= isr_class {
            self.tpr
        } else {
            isr_class
        }
    }

    fn lvt_index(register: u32) -> Option<usize> {
        Some(match register {
            reg::LVT_CMCI => 0,
            reg::LVT_TIMER => 1,
            reg::LVT_THERMAL => 2,
            reg::LVT_PERF => 3,
            reg::LVT_LINT0 => 4,
            reg::LVT_LINT1 => 5,
            reg::LVT_ERROR => 6,
            _ => return None,
        })
    }

    fn divisor(&self) -> u64 {
        // Divide configuration: bits 0,1,3; 0b111 means divide by 1.
        let code = (self.timer_divide & 0b11) | ((self.timer_divide >> 1) & 0b100);
        if code == 0b111 {
            1
        } else {
            2 << code
        }
    }

    fn timer_current(&self) -> u32 {
        if self.timer_deadline_ns == 0 {
            return 0;
        }
        let now = time::system_time_ns();
        let left_ns = self.timer_deadline_ns.saturating_sub(now);
        (left_ns * TIMER_HZ / 1_000_000_000 / self.divisor()).min(u64::from(u32::MAX)) as u32
    }

    /// Reads x2APIC register `register`; `None` means #GP.
    pub fn read(&self, register: u32) -> Option<u64> {
        Some(u64::from(match register {
            reg::ID => self.id,
            reg::VERSION => VERSION,
            reg::TPR => self.tpr,
            reg::PPR => self.ppr(),
            reg::LDR => self.ldr(),
            reg::SVR => self.svr,
            r @ reg::ISR0..=0x17 => self.isr[(r - reg::ISR0) as usize],
            reg::TMR0..=0x1f => 0,
            r @ reg::IRR0..=0x27 => self.irr[(r - reg::IRR0) as usize],
            reg::ESR => self.esr,
            reg::ICR => return Some(self.icr),
            reg::TIMER_INITIAL => self.timer_initial,
            reg::TIMER_CURRENT => self.timer_current(),
            reg::TIMER_DIVIDE => self.timer_divide,
            r => match Self::lvt_index(r) {
                Some(i) => self.lvt[i],
                None => return None,
            },
        }))
    }

    /// Writes x2APIC register `register`; `None` means #GP.
    pub fn write(&mut self, register: u32, value: u64) -> Option<Effect> {
        let low = value as u32;
        match register {
            reg::TPR => self.tpr = low & 0xff,
            reg::EOI => {
                if value != 0 {
                    return None;
                }
                if let Some(v) = highest(&self.isr) {
                    let (w, b) = bit(v);
                    self.isr[w] &= !b;
                }
            }
            reg::SVR => self.svr = low & 0x11ff,
            reg::ESR => self.esr = 0,
            reg::ICR => {
                self.icr = value & !(1 << 12);
                return Some(Effect::Ipi { icr: value });
            }
            reg::SELF_IPI => {
                return Some(Effect::Ipi { icr: icr::SELF | icr::FIXED | u64::from(low & 0xff) });
            }
            reg::TIMER_INITIAL => {
                self.timer_initial = low;
                self.arm_timer();
            }
            reg::TIMER_DIVIDE => self.timer_divide = low & 0b1011,
            r => match Self::lvt_index(r) {
                Some(i) => {
                    self.lvt[i] = low & 0x3_17ff;
                    if r == reg::LVT_TIMER {
                        self.arm_timer();
                    }
                }
                // ID, version, LDR, PPR, ISR/IRR/TMR and unknown registers are read-only.
                None => return None,
            },
        }
        Some(Effect::None)
    }

    fn arm_timer(&mut self) {
        if self.timer_initial == 0 {
            self.timer_deadline_ns = 0;
            return;
        }
        let ns = u64::from(self.timer_initial) * self.divisor() * 1_000_000_000 / TIMER_HZ;
        self.timer_deadline_ns = time::system_time_ns() + ns.max(1);
        self.timer_period_ns = if self.lvt[1] & LVT_TIMER_PERIODIC != 0 { ns.max(1000) } else { 0 };
    }

    /// Fires the timer if due: its vector becomes pending (unless masked).
    pub fn check_timer(&mut self, now: u64) {
        if self.timer_deadline_ns == 0 || now < self.timer_deadline_ns {
            return;
        }
        self.timer_deadline_ns = if self.timer_period_ns != 0 { now + self.timer_period_ns } else { 0 };
        let lvt = self.lvt[1];
        if lvt & LVT_MASKED == 0 {
            self.accept(lvt as u8);
        }
    }

    /// A fixed interrupt arrives.
    pub fn accept(&mut self, vector: u8) {
        if vector < 16 {
            self.esr |= 1 << 6; // received illegal vector
            return;
        }
        let (w, b) = bit(vector);
        self.irr[w] |= b;
    }

    /// The vector to inject now, if one is deliverable; it moves from IRR to ISR.
    pub fn take_deliverable(&mut self) -> Option<u8> {
        if self.svr & (1 << 8) == 0 {
            return None;
        }
        let vector = highest(&self.irr)?;
        if u32::from(vector) & 0xf0 <= self.ppr() & 0xf0 {
            return None;
        }
        let (w, b) = bit(vector);
        self.irr[w] &= !b;
        self.isr[w] |= b;
        Some(vector)
    }

    pub fn has_deliverable(&self) -> bool {
        self.svr & (1 << 8) != 0 && highest(&self.irr).is_some_and(|v| u32::from(v) & 0xf0 > self.ppr() & 0xf0)
    }

    /// INIT: back to the power-on state, waiting for a STARTUP IPI.
    fn init(&mut self) {
        let id = self.id;
        let base = self.base;
        *self = VLapic::new(id);
        self.base = base;
        self.wait_for_sipi = true;
    }

    fn matches(&self, icr: u64) -> bool {
        let dest = (icr >> 32) as u32;
        if icr & XAPIC_ICR != 0 && icr & icr::LOGICAL != 0 {
            // Flat model: a bit per CPU in LDR[31:24]; cluster model: 4-bit cluster, 4 bits.
            let ldr = self.xapic_ldr >> 24;
            let dest = dest & 0xff;
            return dest == 0xff
                || if self.xapic_dfr >> 28 == 0xf {
                    ldr & dest != 0
                } else {
                    (ldr >> 4) == (dest >> 4) && (ldr & dest & 0xf) != 0
                };
        }
        if icr & icr::LOGICAL != 0 {
            let ldr = self.ldr();
            dest == u32::MAX || ((dest >> 16) == (ldr >> 16) && (dest & ldr & 0xffff) != 0)
        } else {
            dest == u32::MAX || dest == self.id
        }
    }
}

/// Carries out an ICR write of vCPU `sender` of `domain`.
pub fn send_ipi(domain: &Domain, sender: u32, icr_value: u64) {
    let mode = icr_value & icr::DELIVERY_MODE;
    let vector = icr_value as u8;
    for id in 0..domain.vcpu_count {
        let Some(target) = domain.vcpu(id) else { continue };
        let selected = match icr_value & icr::SHORTHAND {
            icr::SELF => id == sender,
            icr::ALL => true,
            icr::ALL_BUT_SELF => id != sender,
            _ => target.lapic.lock().matches(icr_value),
        };
        if !selected {
            continue;
        }
        match mode {
            icr::FIXED | icr::LOWEST => {
                target.lapic.lock().accept(vector);
                sched::kick(&target);
            }
            icr::INIT if icr_value & icr::LEVEL_TRIGGER != 0 && icr_value & icr::LEVEL_ASSERT == 0 => {
                // INIT level de-assert: nothing to do on modern CPUs.
            }
            icr::INIT if id != sender => {
                target.lapic.lock().init();
                sched::take_down(&target);
            }
            icr::STARTUP if id != sender => start_from_sipi(&target, vector),
            icr::NMI => log::debug!("d{}: NMI IPI to vCPU {id} ignored", domain.id),
            _ => {}
        }
    }
}

/// STARTUP: a vCPU waiting after INIT starts in real mode at `vector` << 12.
fn start_from_sipi(target: &Vcpu, vector: u8) {
    {
        let mut lapic = target.lapic.lock();
        if !lapic.wait_for_sipi {
            return;
        }
        lapic.wait_for_sipi = false;
    }
    target.reset_to_real_mode(vector);
    sched::make_runnable(target);
}
