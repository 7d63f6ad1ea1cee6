//! `VCPUOP_initialise` for HVM/PVH guests: turns a `vcpu_hvm_context` into the state a vCPU
//! starts in, with Xen's checks (`arch_set_info_hvm_guest`): a context Xen refuses gets
//! -EINVAL here too.

use super::errno;
use crate::virt::{GuestRegs, SegmentState, StartState};
use x86_64::registers::control::{Cr0Flags, Cr4Flags};
use x86_64::registers::model_specific::EferFlags;
use xen_abi::vcpu::{VcpuHvmContext, VcpuHvmX86_32, VcpuHvmX86_64, VCPU_HVM_MODE_32B, VCPU_HVM_MODE_64B};

const CR0_PE: u64 = Cr0Flags::PROTECTED_MODE_ENABLE.bits();
const CR0_PG: u64 = Cr0Flags::PAGING.bits();
const CR4_PAE: u64 = Cr4Flags::PHYSICAL_ADDRESS_EXTENSION.bits();
const EFER_SCE: u64 = EferFlags::SYSTEM_CALL_EXTENSIONS.bits();
const EFER_LME: u64 = EferFlags::LONG_MODE_ENABLE.bits();
const EFER_LMA: u64 = EferFlags::LONG_MODE_ACTIVE.bits();
const EFER_NXE: u64 = EferFlags::NO_EXECUTE_ENABLE.bits();
/// The CR4 bits a guest may start with: VME..OSXMMEXCPT, UMIP, FSGSBASE, PCIDE, OSXSAVE,
/// SMEP, SMAP (never VMXE or SMXE, which the guest's CPUID hides).
const CR4_VALID: u64 = 0x7ff | (1 << 11) | (1 << 16) | (1 << 17) | (1 << 18) | (1 << 20) | (1 << 21);

/// Attribute bits of the packed form.
const ATTR_TYPE_ACCESSED: u16 = 1 << 0;
const ATTR_TYPE_WRITABLE_OR_READABLE: u16 = 1 << 1;
const ATTR_TYPE_CODE: u16 = 1 << 3;
const ATTR_S: u16 = 1 << 4;
const ATTR_P: u16 = 1 << 7;
const ATTR_G: u16 = 1 << 11;
const TSS_BUSY_TYPE: u16 = 0xb;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Seg {
    Cs,
    Ds,
    Ss,
    Es,
    Tr,
}

fn dpl(attributes: u16) -> u16 {
    (attributes >> 5) & 3
}

/// Xen's `check_segment`, after it sets the accessed (busy for TR) bit of present segments.
fn segment(seg: Seg, base: u32, limit: u32, ar: u16) -> Result<SegmentState, i64> {
    if ar & 0xf000 != 0 {
        return Err(errno::EINVAL);
    }
    let mut attributes = ar;
    if attributes & ATTR_P != 0 {
        attributes |= if seg == Seg::Tr { ATTR_TYPE_WRITABLE_OR_READABLE } else { ATTR_TYPE_ACCESSED };
    }
    let state = SegmentState { selector: 0, attributes, limit, base: u64::from(base) };
    if attributes == 0 {
        // Null data segments are fine; CS, SS and TR must describe something.
        return if matches!(seg, Seg::Ds | Seg::Es) { Ok(state) } else { Err(errno::EINVAL) };
    }
    let is_system = attributes & ATTR_S == 0;
    let kind = attributes & 0xf;
    let valid = match seg {
        Seg::Tr => is_system && kind == TSS_BUSY_TYPE,
        _ => !is_system,
    } && attributes & ATTR_P != 0;
    if !valid {
        return Err(errno::EINVAL);
    }
    let code = kind & ATTR_TYPE_CODE != 0;
    let readable_or_writable = kind & ATTR_TYPE_WRITABLE_OR_READABLE != 0;
    let ok = match seg {
        Seg::Cs => code,
        Seg::Ss => !code && readable_or_writable,
        Seg::Ds | Seg::Es => !code || readable_or_writable,
        Seg::Tr => true,
    };
    if ok {
        Ok(state)
    } else {
        Err(errno::EINVAL)
    }
}

fn from_32bit(r: &VcpuHvmX86_32) -> Result<(StartState, GuestRegs), i64> {
    if r.pad1 != 0 || r.pad2 != [0; 3] {
        return Err(errno::EINVAL);
    }
    let cs = segment(Seg::Cs, r.cs_base, r.cs_limit, r.cs_ar)?;
    let ds = segment(Seg::Ds, r.ds_base, r.ds_limit, r.ds_ar)?;
    let ss = segment(Seg::Ss, r.ss_base, r.ss_limit, r.ss_ar)?;
    let es = segment(Seg::Es, r.es_base, r.es_limit, r.es_ar)?;
    let tr = segment(Seg::Tr, r.tr_base, r.tr_limit, r.tr_ar)?;
    let limit = if cs.attributes & ATTR_G != 0 { (cs.limit << 12) | 0xfff } else { cs.limit };
    let present = |s: &SegmentState| s.attributes & ATTR_P != 0;
    if r.eip > limit
        || dpl(ss.attributes) != dpl(cs.attributes)
        || (present(&ds) && dpl(ds.attributes) > dpl(cs.attributes))
        || (present(&es) && dpl(es.attributes) > dpl(cs.attributes))
        || (r.efer & EFER_LMA != 0 && r.efer & EFER_LME == 0)
    {
        return Err(errno::EINVAL);
    }
    let regs = GuestRegs {
        rax: r.eax.into(),
        rcx: r.ecx.into(),
        rdx: r.edx.into(),
        rbx: r.ebx.into(),
        rsp: r.esp.into(),
        rbp: r.ebp.into(),
        rsi: r.esi.into(),
        rdi: r.edi.into(),
        rip: r.eip.into(),
        rflags: r.eflags.into(),
        ..GuestRegs::default()
    };
    let state =
        StartState { cs, ds, ss, es, tr, cr0: r.cr0.into(), cr3: r.cr3.into(), cr4: r.cr4.into(), efer: r.efer };
    Ok((state, regs))
}

fn from_64bit(r: &VcpuHvmX86_64) -> Result<(StartState, GuestRegs), i64> {
    let canonical = ((r.rip as i64) << 16 >> 16) as u64 == r.rip;
    if !canonical || r.cr0 & CR0_PG == 0 || r.cr4 & CR4_PAE == 0 || r.efer & EFER_LME == 0 {
        return Err(errno::EINVAL);
    }
    let flat = |attributes| SegmentState { selector: 0, attributes, limit: u32::MAX, base: 0 };
    let data = flat(0xc93);
    let regs = GuestRegs {
        rax: r.rax,
        rcx: r.rcx,
        rdx: r.rdx,
        rbx: r.rbx,
        rsp: r.rsp,
        rbp: r.rbp,
        rsi: r.rsi,
        rdi: r.rdi,
        rip: r.rip,
        rflags: r.rflags,
        ..GuestRegs::default()
    };
    let state = StartState {
        cs: flat(0xa9b),
        ds: data,
        ss: data,
        es: data,
        tr: SegmentState { selector: 0, attributes: 0x8b, limit: 0x67, base: 0 },
        cr0: r.cr0,
        cr3: r.cr3,
        cr4: r.cr4,
        efer: r.efer,
    };
    Ok((state, regs))
}

/// The state and registers `ctx` asks for, or Xen's error.
pub fn start_state(ctx: &VcpuHvmContext) -> Result<(StartState, GuestRegs), i64> {
    if ctx.pad != 0 {
        return Err(errno::EINVAL);
    }
    let raw = &ctx.cpu_regs.raw;
    let (mut state, mut regs) = match ctx.mode {
        VCPU_HVM_MODE_32B => {
            let bytes: &[u8; VcpuHvmX86_32::SIZE] = raw[..VcpuHvmX86_32::SIZE].try_into().map_err(|_| errno::EINVAL)?;
            from_32bit(&VcpuHvmX86_32::from_bytes(bytes))?
        }
        VCPU_HVM_MODE_64B => {
            let bytes: &[u8; VcpuHvmX86_64::SIZE] = raw[..VcpuHvmX86_64::SIZE].try_into().map_err(|_| errno::EINVAL)?;
            from_64bit(&VcpuHvmX86_64::from_bytes(bytes))?
        }
        _ => return Err(errno::EINVAL),
    };
    // Xen sets LMA with LME; the hardware keeps LMA only with paging on, so we do too
    // (Xen's own check refuses LMA without LME).
    if state.efer & EFER_LME != 0 && state.cr0 & CR0_PG != 0 {
        state.efer |= EFER_LMA;
    } else {
        state.efer &= !EFER_LMA;
    }
    let efer_known = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
    let paging_without_protection = state.cr0 & CR0_PG != 0 && state.cr0 & CR0_PE == 0;
    if state.cr4 & !CR4_VALID != 0 || state.efer & !efer_known != 0 || paging_without_protection {
        return Err(errno::EINVAL);
    }
    // Bit 1 of RFLAGS always reads as one.
    regs.rflags |= 0x2;
    Ok((state, regs))
}
