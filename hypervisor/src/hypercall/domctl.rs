//! `domctl` and `sysctl`: the control domain's interface to domains and to the host
//! ([`xen_abi::ctl`], private to Ferrovisor and versioned). Every call is read and its
//! version checked first (-EFAULT, -EACCES), then the caller's privilege (-EPERM: only the
//! control domain), then the operation's arguments, as strictly as any hypercall's.

use super::{errno, read_struct, write_struct};
use crate::domain::{self, CreateError, DomId, Domain, DomainConfig, DomainState, DOMID_FIRST_RESERVED};
use crate::mm::frames;
use crate::sched;
use crate::vcpu::{Exec, Vcpu};
use alloc::string::String;
use alloc::sync::Arc;
use xen_abi::ctl::*;
use xen_abi::vcpu::VcpuHvmContext;
use xen_abi::XenStruct;

/// Decodes a command's payload from the union.
fn payload<T: XenStruct>(u: &[u8; 128]) -> T {
    T::read_from(u).expect("every control payload fits the 128-byte union")
}

/// Encodes a command's payload into the union.
fn set_payload<T: XenStruct>(u: &mut [u8; 128], value: &T) {
    value.write_to(u).expect("every control payload fits the 128-byte union");
}

/// The caller must be the control domain (after the argument was read, as in Xen).
fn check_privileged(vcpu: &Vcpu) -> Result<(), i64> {
    if vcpu.domain.is_privileged() {
        Ok(())
    } else {
        Err(errno::EPERM)
    }
}

pub fn domctl(vcpu: &Vcpu, exec: &Exec, arg: u64) -> Result<i64, i64> {
    let mut op: Domctl = read_struct(vcpu, exec, arg)?;
    if op.interface_version != CTL_INTERFACE_VERSION {
        return Err(errno::EACCES);
    }
    check_privileged(vcpu)?;
    match op.cmd {
        DOMCTL_CREATEDOMAIN => {
            let mut create: DomctlCreateDomain = payload(&op.u);
            let domain = create_domain(op.domain, &create)?;
            create.rsdp_gpa = crate::pvh::rsdp_of(&domain.ram);
            op.domain = domain.id;
            set_payload(&mut op.u, &create);
            write_struct(vcpu, exec, arg, &op)?;
            Ok(0)
        }
        DOMCTL_GETDOMAININFO => {
            let domain = domain::first_from(op.domain).ok_or(errno::ESRCH)?;
            op.domain = domain.id;
            set_payload(&mut op.u, &domain_info(&domain));
            write_struct(vcpu, exec, arg, &op)?;
            Ok(0)
        }
        cmd => {
            let target = domain::get(op.domain).ok_or(errno::ESRCH)?;
            match cmd {
                // The control domain cannot pause or destroy itself (Xen: -EINVAL).
                DOMCTL_DESTROYDOMAIN | DOMCTL_PAUSEDOMAIN if target.id == vcpu.domain.id => Err(errno::EINVAL),
                DOMCTL_DESTROYDOMAIN => {
                    target.destroy();
                    Ok(0)
                }
                DOMCTL_PAUSEDOMAIN => {
                    target.pause();
                    Ok(0)
                }
                DOMCTL_UNPAUSEDOMAIN if target.unpause() => Ok(0),
                DOMCTL_UNPAUSEDOMAIN => Err(errno::EINVAL),
                DOMCTL_SETVCPUCONTEXT => {
                    let request: DomctlVcpuContext = payload(&op.u);
                    let context: VcpuHvmContext = read_struct(vcpu, exec, request.ctxt)?;
                    let target_vcpu = target.vcpu(request.vcpu).ok_or(errno::EINVAL)?;
                    target_vcpu.initialise(errno::EEXIST, || super::vcpu_context::start_state(&context))?;
                    sched::make_runnable(&target_vcpu);
                    Ok(0)
                }
                _ => Err(errno::ENOSYS),
            }
        }
    }
}

/// Validates `DOMCTL_createdomain`'s request and makes the (paused, empty) domain.
fn create_domain(wanted: DomId, request: &DomctlCreateDomain) -> Result<Arc<Domain>, i64> {
    if wanted >= DOMID_FIRST_RESERVED {
        return Err(errno::EINVAL);
    }
    if wanted != 0 && domain::get(wanted).is_some() {
        return Err(errno::EEXIST);
    }
    if !request.memory_kib.is_multiple_of(2048) || request.memory_kib > (1 << 40) {
        return Err(errno::EINVAL);
    }
    let name_len = request.name.iter().position(|&b| b == 0).unwrap_or(request.name.len());
    let name = core::str::from_utf8(&request.name[..name_len]).map_err(|_| errno::EINVAL)?;
    let config = DomainConfig {
        name: String::from(name),
        memory_mib: request.memory_kib / 1024,
        vcpus: request.max_vcpus,
        weight: if request.weight == 0 { domain::DEFAULT_WEIGHT } else { request.weight },
        affinity: if request.affinity == 0 { u64::MAX } else { request.affinity },
        cmdline: String::new(),
    };
    domain::create_controlled(&config, wanted, request.handle).map_err(|e| {
        log::info!("createdomain {name:?} refused: {e}");
        match e {
            CreateError::OutOfMemory => errno::ENOMEM,
            CreateError::DomainIdInUse(_) => errno::EEXIST,
            CreateError::NoDomainIds => errno::ENOSPC,
            CreateError::NoVirtualization(_) => errno::ENODEV,
            CreateError::BadConfig(_) | CreateError::Kernel(_) | CreateError::Layout(_) => errno::EINVAL,
        }
    })
}

/// What `getdomaininfo` reports about `domain`.
fn domain_info(domain: &Domain) -> DomctlGetDomainInfo {
    let mut flags = DOMINF_HVM_GUEST | DOMINF_HAP;
    match domain.state() {
        DomainState::Running => {}
        DomainState::Shutdown(reason) => flags |= DOMINF_SHUTDOWN | u32::from(reason.code()) << DOMINF_SHUTDOWN_SHIFT,
        DomainState::Crashed(_) => {
            flags |= DOMINF_SHUTDOWN | xen_abi::sched::SHUTDOWN_CRASH << DOMINF_SHUTDOWN_SHIFT;
        }
        DomainState::Destroyed => {}
    }
    if domain.is_dying() {
        flags |= DOMINF_DYING;
    }
    if domain.is_paused() {
        flags |= DOMINF_PAUSED;
    }
    let vcpus: alloc::vec::Vec<_> = (0..domain.vcpu_count).filter_map(|id| domain.vcpu(id)).collect();
    if vcpus.iter().any(|v| sched::is_running(v)) {
        flags |= DOMINF_RUNNING;
    } else if vcpus.iter().all(|v| sched::is_idle(v)) {
        flags |= DOMINF_BLOCKED;
    }
    let (tot_pages, max_pages) = domain.ram.reservation();
    DomctlGetDomainInfo {
        domain: domain.id,
        pad: 0,
        flags,
        tot_pages,
        max_pages,
        cpu_time: domain.runtime_ns(),
        nr_online_vcpus: vcpus.iter().filter(|v| !sched::is_down(v)).count() as u32,
        max_vcpu_id: domain.vcpu_count.saturating_sub(1),
        handle: domain.handle(),
        weight: domain.weight,
        pause_count: domain.pause_count(),
    }
}

/// Most entries one `getdomaininfolist` call returns.
const MAX_LIST: u32 = 1024;

pub fn sysctl(vcpu: &Vcpu, exec: &Exec, arg: u64) -> Result<i64, i64> {
    let mut op: Sysctl = read_struct(vcpu, exec, arg)?;
    if op.interface_version != CTL_INTERFACE_VERSION {
        return Err(errno::EACCES);
    }
    check_privileged(vcpu)?;
    match op.cmd {
        SYSCTL_PHYSINFO => {
            let stats = frames::stats();
            let cpus = crate::arch::x86_64::smp::online() as u32;
            let mut capabilities = 0;
            if crate::virt::detect().is_ok() {
                capabilities |= PHYSCAP_HVM | PHYSCAP_HAP;
            }
            let info = SysctlPhysinfo {
                nr_cpus: cpus,
                max_cpu_id: cpus.saturating_sub(1),
                cpu_khz: (crate::arch::x86_64::time::tsc_hz() / 1000) as u32,
                capabilities,
                total_pages: stats.managed,
                free_pages: stats.free,
                max_mfn: frames::tracked_frames().saturating_sub(1),
                nr_domains: domain::count() as u32,
                pad: 0,
            };
            set_payload(&mut op.u, &info);
        }
        SYSCTL_GETDOMAININFOLIST => {
            let mut list: SysctlGetDomainInfoList = payload(&op.u);
            if list.max_domains > MAX_LIST {
                return Err(errno::EINVAL);
            }
            let mut written = 0u32;
            let mut next = list.first_domain;
            while written < list.max_domains {
                let Some(domain) = domain::first_from(next) else { break };
                let at = list.buffer + u64::from(written) * DomctlGetDomainInfo::SIZE as u64;
                write_struct(vcpu, exec, at, &domain_info(&domain))?;
                written += 1;
                match domain.id.checked_add(1) {
                    Some(id) => next = id,
                    None => break,
                }
            }
            list.num_domains = written;
            set_payload(&mut op.u, &list);
        }
        _ => return Err(errno::ENOSYS),
    }
    write_struct(vcpu, exec, arg, &op)?;
    Ok(0)
}
