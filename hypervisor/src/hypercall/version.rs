//! `xen_version` (`public/version.h`): what a guest may learn about "Xen". We answer as
//! Xen 4.17 would for an HVM domU, so guests cannot tell the difference.

use super::{errno, read_arg, write_arg};
use crate::vcpu::{Exec, Vcpu};

use xen_abi::features::*;
use xen_abi::version::*;

const VERSION: i64 = (4 << 16) | 17;
const EXTRAVERSION: &[u8] = b".0";
const CAPABILITIES: &[u8] = b"xen-3.0-x86_64 hvm-3.0-x86_32 hvm-3.0-x86_32p hvm-3.0-x86_64";
/// `HYPERVISOR_VIRT_START` of 64-bit Xen.
const VIRT_START: u64 = 0xffff_8000_0000_0000;

/// `XENFEAT_*` bits of submap 0 for an HVM/PVH guest, as Xen 4.17 sets them.
pub const FEATURES_SUBMAP0: u32 = (1 << XENFEAT_WRITABLE_PAGE_TABLES)
    | (1 << XENFEAT_AUTO_TRANSLATED_PHYSMAP)
    | (1 << XENFEAT_HVM_CALLBACK_VECTOR)
    | (1 << XENFEAT_HVM_SAFE_PVCLOCK)
    | (1 << XENFEAT_MEMORY_OP_VNODE_SUPPORTED)
    | (1 << XENFEAT_NOT_DIRECT_MAPPED);

fn write_string(vcpu: &Vcpu, exec: &Exec, gva: u64, text: &[u8], size: usize) -> Result<i64, i64> {
    let mut buf = alloc::vec![0u8; size];
    buf[..text.len()].copy_from_slice(text);
    write_arg(vcpu, exec, gva, &buf)?;
    Ok(0)
}

pub fn xen_version(vcpu: &Vcpu, exec: &mut Exec, args: [u64; 5]) -> Result<i64, i64> {
    let arg = args[1];
    match args[0] {
        XENVER_VERSION => Ok(VERSION),
        XENVER_EXTRAVERSION => write_string(vcpu, exec, arg, EXTRAVERSION, 16),
        XENVER_COMPILE_INFO => {
            // struct xen_compile_info { compiler[64]; compile_by[16]; compile_domain[32]; compile_date[32]; }
            let mut info = [0u8; 144];
            info[..3].copy_from_slice(b"gcc");
            write_arg(vcpu, exec, arg, &info)?;
            Ok(0)
        }
        XENVER_CAPABILITIES => write_string(vcpu, exec, arg, CAPABILITIES, 1024),
        XENVER_CHANGESET => write_string(vcpu, exec, arg, b"", 64),
        XENVER_PLATFORM_PARAMETERS => {
            write_arg(vcpu, exec, arg, &VIRT_START.to_le_bytes())?;
            Ok(0)
        }
        XENVER_GET_FEATURES => {
            // struct xen_feature_info { unsigned int submap_idx; uint32_t submap; }
            let raw: [u8; 8] = read_arg(vcpu, exec, arg)?;
            let index = super::u32_at(&raw, 0);
            if index >= XENFEAT_NR_SUBMAPS {
                return Err(errno::EINVAL);
            }
            let mut out = raw;
            out[4..8].copy_from_slice(&FEATURES_SUBMAP0.to_le_bytes());
            write_arg(vcpu, exec, arg, &out)?;
            Ok(0)
        }
        XENVER_PAGESIZE if arg != 0 => Err(errno::EINVAL),
        XENVER_PAGESIZE => Ok(4096),
        XENVER_GUEST_HANDLE => {
            write_arg(vcpu, exec, arg, &vcpu.domain.handle())?;
            Ok(0)
        }
        // The host's command line is not a domU's to read: Xen hands it "<denied>".
        XENVER_COMMANDLINE => write_string(vcpu, exec, arg, b"<denied>", 1024),
        XENVER_BUILD_ID => Err(errno::EPERM),
        _ => Err(errno::ENOSYS),
    }
}
