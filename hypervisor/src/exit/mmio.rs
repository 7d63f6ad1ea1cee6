//! Emulated MMIO: the xAPIC register page at 0xFEE00000. A guest access to it faults
//! (nothing is mapped there); we decode the instruction at RIP — the MOV forms compilers
//! emit for 32-bit register accesses — perform the access on the vCPU's APIC, and step
//! over the instruction. Anything else is refused, and the domain crashed with a reason.

use super::Action;
use crate::guest_access::copy_from_guest;
use crate::vcpu::{Exec, Vcpu};
use crate::vlapic::{self, Effect};
use alloc::format;

pub const LAPIC_PAGE: u64 = 0xfee0_0000;

/// A decoded 32-bit MOV between a register (or an immediate) and memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mov {
    pub length: u64,
    pub kind: MovKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MovKind {
    /// `mov r32, [mem]` (8B /r): load into register `reg`.
    Load { reg: u8 },
    /// `mov [mem], r32` (89 /r): store register `reg`.
    Store { reg: u8 },
    /// `mov dword [mem], imm32` (C7 /0).
    StoreImmediate { value: u32 },
}

/// Decodes a MOV with a memory operand; `None` for anything else.
pub fn decode(bytes: &[u8]) -> Option<Mov> {
    let mut at = 0;
    let mut rex = 0u8;
    // Segment overrides are harmless here; operand-size or REX.W would change the width.
    while let Some(&b) = bytes.get(at) {
        match b {
            0x26 | 0x2e | 0x36 | 0x3e | 0x64 | 0x65 => at += 1,
            0x40..=0x4f => {
                rex = b;
                at += 1;
                break;
            }
            _ => break,
        }
    }
    if rex & 0x08 != 0 {
        return None; // 64-bit operand: not an APIC register access
    }
    let opcode = *bytes.get(at)?;
    at += 1;
    let modrm = *bytes.get(at)?;
    at += 1;
    let (mode, reg, rm) = (modrm >> 6, (modrm >> 3) & 7, modrm & 7);
    if mode == 3 {
        return None; // register operand, no memory
    }
    let mut displacement = match mode {
        1 => 1,
        2 => 4,
        _ => 0,
    };
    if rm == 4 {
        let sib = *bytes.get(at)?;
        at += 1;
        if mode == 0 && sib & 7 == 5 {
            displacement = 4;
        }
    } else if mode == 0 && rm == 5 {
        displacement = 4; // RIP-relative
    }
    at += displacement;
    let reg = reg | ((rex & 0x04) << 1);
    let kind = match opcode {
        0x8b => MovKind::Load { reg },
        0x89 => MovKind::Store { reg },
        0xc7 if reg & 7 == 0 => {
            let imm = bytes.get(at..at + 4)?;
            at += 4;
            MovKind::StoreImmediate { value: u32::from_le_bytes([imm[0], imm[1], imm[2], imm[3]]) }
        }
        _ => return None,
    };
    (at <= 15 && at <= bytes.len()).then_some(Mov { length: at as u64, kind })
}

/// Emulates the access at `gpa` (inside the APIC page) by the instruction at RIP.
pub fn emulate_lapic(vcpu: &Vcpu, exec: &mut Exec, gpa: u64) -> Action {
    let rip = exec.hw.code_segment_base().wrapping_add(exec.regs.rip);
    let mut bytes = [0u8; 15];
    // The instruction may end near a page boundary: take what can be read.
    let fetched = (1..=15).rev().find(|&n| copy_from_guest(&vcpu.domain.ram, exec, rip, &mut bytes[..n]).is_ok());
    let Some(mov) = fetched.and_then(|n| decode(&bytes[..n])) else {
        vcpu.domain.crash(
            "mmio",
            format!(
                "unsupported instruction {:02x?} accessing the local APIC at {gpa:#x} (RIP {:#x})",
                &bytes[..4],
                exec.regs.rip
            ),
        );
        return Action::Stop;
    };
    let offset = (gpa - LAPIC_PAGE) as u32;
    match mov.kind {
        MovKind::Load { reg } => {
            let value = vcpu.lapic.lock().read_mmio(offset);
            *exec.regs.gpr_mut(reg) = u64::from(value);
        }
        MovKind::Store { .. } | MovKind::StoreImmediate { .. } => {
            let value = match mov.kind {
                MovKind::Store { reg } => *exec.regs.gpr_mut(reg) as u32,
                MovKind::StoreImmediate { value } => value,
                MovKind::Load { .. } => unreachable!("handled above"),
            };
            let effect = vcpu.lapic.lock().write_mmio(offset, value);
            if let Effect::Ipi { icr } = effect {
                vlapic::send_ipi(&vcpu.domain, vcpu.id, icr);
            }
        }
    }
    exec.regs.rip += mov.length;
    Action::Continue
}
