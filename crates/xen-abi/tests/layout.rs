//! Layout and byte-conversion tests for every structure of the crate.
//!
//! Sizes and field offsets are also asserted at compile time inside the crate; these tests
//! check the byte conversion (a field decoded from one place and encoded to another, or with
//! the wrong width, shows up as a round-trip difference), that the test list really covers
//! every structure, and the layouts against the measured facts in
//! `/work/shared/notes/linux-pvh-abi.md` §2-§3.

use std::collections::BTreeSet;
use std::fmt::Debug;

use xen_abi::console::*;
use xen_abi::ctl::*;
use xen_abi::event_channel::*;
use xen_abi::grant_table::*;
use xen_abi::hvm::*;
use xen_abi::memory::*;
use xen_abi::sched::*;
use xen_abi::start_info::*;
use xen_abi::vcpu::*;
use xen_abi::version::*;
use xen_abi::xen::*;
use xen_abi::xs_wire::*;
use xen_abi::{FieldInfo, ShortBuffer, XenStruct};

/// A byte pattern without zeros in which any two bytes less than 251 apart differ.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 + 1).collect()
}

/// Bytes inside a field that are padding of a nested structure (C layout, not named in the
/// Rust structure): `(structure, field, bytes)`. Every other field byte must survive a round trip.
const INNER_PADDING: &[(&str, &str, usize)] = &[
    ("SharedInfo", "vcpu_info", 32 * 6), // vcpu_info: 6 bytes after evtchn_upcall_mask
    ("XenMemoryExchange", "in_", 6),     // xen_memory_reservation: 6 bytes after domid
    ("XenMemoryExchange", "out", 6),
    ("XenForeignMemoryMap", "map", 4), // xen_memory_map: 4 bytes after nr_entries
    ("GnttabCopy", "source", 4),       // gnttab_copy_ptr: 4 bytes after offset
    ("GnttabCopy", "dest", 4),
];

/// The first offset where `a` and `b` differ, with both bytes.
fn first_difference(a: &[u8], b: &[u8]) -> Option<(usize, u8, u8)> {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).enumerate().find(|(_, (x, y))| x != y).map(|(i, (&x, &y))| (i, x, y))
}

/// Checks one structure: its layout table, and that decoding the pattern and encoding the
/// result gives the pattern back with exactly the padding bytes zeroed, through the inherent
/// functions and through [`XenStruct`].
fn check<T: XenStruct + PartialEq + Debug>(
    name: &str,
    size: usize,
    fields: &[FieldInfo],
    from_bytes: impl Fn(&[u8]) -> T,
    to_bytes: impl Fn(&T) -> Vec<u8>,
) {
    assert_eq!(size, T::SIZE, "{name}: SIZE");
    assert_eq!(size, std::mem::size_of::<T>(), "{name}: size_of");

    // The layout table: in order, non-overlapping, inside the structure.
    assert!(!fields.is_empty(), "{name}: no fields");
    let mut end = 0;
    for f in fields {
        assert!(f.size > 0, "{name}.{}: empty", f.name);
        assert!(f.offset >= end, "{name}.{}: at {} overlaps the previous field (ends {end})", f.name, f.offset);
        end = f.offset + f.size;
        assert!(end <= size, "{name}.{}: ends at {end}, beyond {size}", f.name);
    }

    // Which bytes survive decoding and encoding: all field bytes except a nested structure's
    // own padding; no padding byte of this structure.
    let kept: Vec<bool> = to_bytes(&from_bytes(&vec![0xff; size])).iter().map(|&b| b == 0xff).collect();
    for (i, &k) in kept.iter().enumerate() {
        let inside = fields.iter().any(|f| (f.offset..f.offset + f.size).contains(&i));
        assert!(!k || inside, "{name}: padding byte {i} survives a round trip");
    }
    for f in fields {
        let dropped = kept[f.offset..f.offset + f.size].iter().filter(|&&k| !k).count();
        let allowed = INNER_PADDING.iter().find(|e| e.0 == name && e.1 == f.name).map_or(0, |e| e.2);
        assert_eq!(dropped, allowed, "{name}.{}: bytes lost in a round trip", f.name);
    }

    let p = pattern(size);
    let expected: Vec<u8> = p.iter().zip(&kept).map(|(&b, &k)| if k { b } else { 0 }).collect();

    // Inherent from_bytes / to_bytes: every byte comes back to its own place.
    let value = from_bytes(&p);
    let diff = first_difference(&to_bytes(&value), &expected);
    assert_eq!(diff, None, "{name}: to_bytes(from_bytes(pattern)) differs at (offset, got, expected)");
    assert_eq!(from_bytes(&expected), value, "{name}: padding must not matter");

    // Each field alone: its bytes decode into it and nothing else.
    for f in fields {
        let mut only = vec![0u8; size];
        only[f.offset..f.offset + f.size].copy_from_slice(&expected[f.offset..f.offset + f.size]);
        let diff = first_difference(&to_bytes(&from_bytes(&only)), &only);
        assert_eq!(diff, None, "{name}.{}: field bytes differ at (offset, got, expected)", f.name);
    }

    // XenStruct on slices.
    let mut long = p.clone();
    long.extend_from_slice(&[0xee; 8]);
    assert_eq!(T::read_from(&long).unwrap(), value, "{name}: read_from");
    assert_eq!(T::read_from(&p[..size - 1]), Err(ShortBuffer { needed: size, got: size - 1 }), "{name}: short read");
    let mut out = vec![0xeeu8; size + 8];
    value.write_to(&mut out).unwrap();
    assert_eq!(first_difference(&out[..size], &expected), None, "{name}: write_to");
    assert!(out[size..].iter().all(|&b| b == 0xee), "{name}: write_to wrote past SIZE");
    let mut short = vec![0u8; size - 1];
    assert_eq!(value.write_to(&mut short), Err(ShortBuffer { needed: size, got: size - 1 }), "{name}: short write");

    // Default is all zero.
    assert!(to_bytes(&T::default()).iter().all(|&b| b == 0), "{name}: default");
    assert_eq!(from_bytes(&vec![0u8; size]), T::default(), "{name}: zero bytes");
}

/// Runs [`check`] on each listed structure and returns their names.
macro_rules! check_all {
    ($($t:ident),* $(,)?) => {{
        let mut names = Vec::new();
        $(
            check::<$t>(
                stringify!($t),
                $t::SIZE,
                $t::FIELDS,
                |b| $t::from_bytes(b.try_into().expect("SIZE bytes")),
                |v| v.to_bytes().to_vec(),
            );
            names.push(stringify!($t).to_string());
        )*
        names
    }};
}

/// The names of the structures the crate's sources declare with `xen_struct!`
/// (`pub struct Name: N bytes {`).
fn declared_structs() -> BTreeSet<String> {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(src).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("pub struct ") {
                if let Some((name, tail)) = rest.split_once(':') {
                    let is_ident = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                    if is_ident && tail.trim_end().ends_with("bytes {") {
                        names.insert(name.to_string());
                    }
                }
            }
        }
    }
    names
}

#[test]
fn every_structure_round_trips() {
    let tested = check_all!(
        // xen
        VcpuTimeInfo,
        ArchVcpuInfo,
        VcpuInfo,
        ArchSharedInfo,
        SharedInfo,
        MulticallEntry,
        // sched
        SchedShutdown,
        SchedPoll,
        SchedRemoteShutdown,
        SchedWatchdog,
        SchedPinOverride,
        // vcpu
        VcpuRunstateInfo,
        VcpuRegisterRunstateMemoryArea,
        VcpuSetPeriodicTimer,
        VcpuSetSingleshotTimer,
        VcpuRegisterVcpuInfo,
        VcpuGetPhysid,
        VcpuRegisterTimeMemoryArea,
        VcpuHvmX86_32,
        VcpuHvmX86_64,
        VcpuHvmCpuRegs,
        VcpuHvmContext,
        // memory
        XenMemoryReservation,
        XenMemoryExchange,
        XenMachphysMfnList,
        XenMachphysMapping,
        XenAddToPhysmap,
        XenAddToPhysmapBatch,
        XenRemoveFromPhysmap,
        XenMemoryMap,
        XenForeignMemoryMap,
        XenPodTarget,
        XenMemAcquireResource,
        E820Entry,
        // event_channel
        EvtchnAllocUnbound,
        EvtchnBindInterdomain,
        EvtchnBindVirq,
        EvtchnBindPirq,
        EvtchnBindIpi,
        EvtchnClose,
        EvtchnSend,
        EvtchnStatusU,
        EvtchnStatus,
        EvtchnBindVcpu,
        EvtchnUnmask,
        EvtchnReset,
        EvtchnInitControl,
        EvtchnExpandArray,
        EvtchnSetPriority,
        EvtchnFifoControlBlock,
        // grant_table
        GrantEntryV1,
        GrantEntryHeader,
        GrantEntryV2,
        GnttabMapGrantRef,
        GnttabUnmapGrantRef,
        GnttabSetupTable,
        GnttabDumpTable,
        GnttabTransfer,
        GnttabCopyPtrU,
        GnttabCopyPtr,
        GnttabCopy,
        GnttabQuerySize,
        GnttabUnmapAndReplace,
        GnttabSetVersion,
        GnttabGetStatusFrames,
        GnttabGetVersion,
        GnttabSwapGrantRef,
        GnttabCacheFlushA,
        GnttabCacheFlush,
        // hvm
        XenHvmParam,
        XenHvmPagetableDying,
        XenHvmGetTime,
        XenHvmGetMemType,
        XenHvmEvtchnUpcallVector,
        // version
        XenCompileInfo,
        XenPlatformParameters,
        XenFeatureInfo,
        XenBuildId,
        // console
        XenconsInterface,
        // xs_wire
        XsdSockmsg,
        XenstoreDomainInterface,
        // start_info
        HvmStartInfo,
        HvmModlistEntry,
        HvmMemmapTableEntry,
        // ctl (Ferrovisor's own control interface)
        Domctl,
        Sysctl,
        DomctlCreateDomain,
        DomctlGetDomainInfo,
        DomctlVcpuContext,
        SysctlPhysinfo,
        SysctlGetDomainInfoList,
    );
    let tested: BTreeSet<String> = tested.into_iter().collect();
    let declared = declared_structs();
    assert!(declared.len() > 80, "found only {} declarations", declared.len());
    let missing: Vec<_> = declared.difference(&tested).collect();
    assert!(missing.is_empty(), "structures not in this test: {missing:?}");
    let unknown: Vec<_> = tested.difference(&declared).collect();
    assert!(unknown.is_empty(), "tested but not found in the sources: {unknown:?}");
}

/// A structure's C name, layout table, size and some `(field, offset)` pairs.
type Layout<'a> = (&'a str, &'a [FieldInfo], usize, &'a [(&'a str, usize)]);

/// The layouts against the notes (§2.1, §3.1, §3.2) and the brief.
#[test]
fn layouts_match_the_notes() {
    #[rustfmt::skip]
    let table: &[Layout] = &[
        ("hvm_start_info", HvmStartInfo::FIELDS, HvmStartInfo::SIZE, &[
            ("magic", 0), ("version", 4), ("flags", 8), ("nr_modules", 12), ("modlist_paddr", 16),
            ("cmdline_paddr", 24), ("rsdp_paddr", 32), ("memmap_paddr", 40), ("memmap_entries", 48),
            ("reserved", 52),
        ]),
        ("hvm_modlist_entry", HvmModlistEntry::FIELDS, 32, &[
            ("paddr", 0), ("size", 8), ("cmdline_paddr", 16), ("reserved", 24),
        ]),
        ("hvm_memmap_table_entry", HvmMemmapTableEntry::FIELDS, 24, &[
            ("addr", 0), ("size", 8), ("type_", 16), ("reserved", 20),
        ]),
        ("xen_add_to_physmap", XenAddToPhysmap::FIELDS, 24, &[
            ("domid", 0), ("size", 2), ("space", 4), ("idx", 8), ("gpfn", 16),
        ]),
        ("xen_memory_reservation", XenMemoryReservation::FIELDS, 32, &[
            ("extent_start", 0), ("nr_extents", 8), ("extent_order", 16), ("mem_flags", 20), ("domid", 24),
        ]),
        ("xen_memory_map", XenMemoryMap::FIELDS, 16, &[("nr_entries", 0), ("buffer", 8)]),
        ("xen_hvm_param", XenHvmParam::FIELDS, 16, &[("domid", 0), ("index", 4), ("value", 8)]),
        ("xen_hvm_evtchn_upcall_vector", XenHvmEvtchnUpcallVector::FIELDS, 8, &[("vcpu", 0), ("vector", 4)]),
        ("vcpu_register_vcpu_info", VcpuRegisterVcpuInfo::FIELDS, 16, &[("mfn", 0), ("offset", 8), ("rsvd", 12)]),
        ("vcpu_set_singleshot_timer", VcpuSetSingleshotTimer::FIELDS, 16, &[("timeout_abs_ns", 0), ("flags", 8)]),
        ("vcpu_runstate_info", VcpuRunstateInfo::FIELDS, 48, &[("state", 0), ("state_entry_time", 8), ("time", 16)]),
        ("vcpu_hvm_context", VcpuHvmContext::FIELDS, 128, &[("mode", 0), ("pad", 4), ("cpu_regs", 8)]),
        ("vcpu_hvm_x86_32", VcpuHvmX86_32::FIELDS, 120, &[
            ("eip", 32), ("cr0", 40), ("efer", 56), ("cs_base", 64), ("tr_limit", 100), ("cs_ar", 104),
            ("tr_ar", 112), ("pad2", 114),
        ]),
        ("vcpu_hvm_x86_64", VcpuHvmX86_64::FIELDS, 112, &[("rip", 64), ("cr0", 80), ("efer", 104)]),
        ("sched_poll", SchedPoll::FIELDS, 24, &[("ports", 0), ("nr_ports", 8), ("timeout", 16)]),
        ("sched_shutdown", SchedShutdown::FIELDS, 4, &[("reason", 0)]),
        ("sched_remote_shutdown", SchedRemoteShutdown::FIELDS, 8, &[("domain_id", 0), ("reason", 4)]),
        ("grant_entry_v1", GrantEntryV1::FIELDS, 8, &[("flags", 0), ("domid", 2), ("frame", 4)]),
        ("grant_entry_v2", GrantEntryV2::FIELDS, 16, &[("raw", 0)]),
        ("gnttab_map_grant_ref", GnttabMapGrantRef::FIELDS, 32, &[
            ("host_addr", 0), ("flags", 8), ("ref_", 12), ("dom", 16), ("status", 18), ("handle", 20),
            ("dev_bus_addr", 24),
        ]),
        ("gnttab_copy", GnttabCopy::FIELDS, 40, &[
            ("source", 0), ("dest", 16), ("len", 32), ("flags", 34), ("status", 36),
        ]),
        ("gnttab_copy_ptr", GnttabCopyPtr::FIELDS, 16, &[("u", 0), ("domid", 8), ("offset", 10)]),
        ("evtchn_alloc_unbound", EvtchnAllocUnbound::FIELDS, 8, &[("dom", 0), ("remote_dom", 2), ("port", 4)]),
        ("evtchn_bind_interdomain", EvtchnBindInterdomain::FIELDS, 12, &[
            ("remote_dom", 0), ("remote_port", 4), ("local_port", 8),
        ]),
        ("evtchn_status", EvtchnStatus::FIELDS, 24, &[
            ("dom", 0), ("port", 4), ("status", 8), ("vcpu", 12), ("u", 16),
        ]),
        ("evtchn_init_control", EvtchnInitControl::FIELDS, 24, &[
            ("control_gfn", 0), ("offset", 8), ("vcpu", 12), ("link_bits", 16),
        ]),
        ("shared_info", SharedInfo::FIELDS, 3136, &[
            ("vcpu_info", 0), ("evtchn_pending", 2048), ("evtchn_mask", 2560), ("wc_version", 3072),
            ("wc_sec", 3076), ("wc_nsec", 3080), ("wc_sec_hi", 3084), ("arch", 3088),
        ]),
        ("arch_shared_info", ArchSharedInfo::FIELDS, 48, &[("max_pfn", 0), ("p2m_generation", 40)]),
        ("vcpu_info", VcpuInfo::FIELDS, 64, &[
            ("evtchn_upcall_pending", 0), ("evtchn_upcall_mask", 1), ("evtchn_pending_sel", 8), ("arch", 16),
            ("time", 32),
        ]),
        ("arch_vcpu_info", ArchVcpuInfo::FIELDS, 16, &[("cr2", 0), ("pad", 8)]),
        ("vcpu_time_info", VcpuTimeInfo::FIELDS, 32, &[
            ("version", 0), ("pad0", 4), ("tsc_timestamp", 8), ("system_time", 16), ("tsc_to_system_mul", 24),
            ("tsc_shift", 28), ("flags", 29), ("pad1", 30),
        ]),
        ("xencons_interface", XenconsInterface::FIELDS, 3088, &[
            ("in_", 0), ("out", 1024), ("in_cons", 3072), ("in_prod", 3076), ("out_cons", 3080), ("out_prod", 3084),
        ]),
        ("xenstore_domain_interface", XenstoreDomainInterface::FIELDS, 2076, &[
            ("req", 0), ("rsp", 1024), ("req_cons", 2048), ("req_prod", 2052), ("rsp_cons", 2056),
            ("rsp_prod", 2060), ("server_features", 2064), ("connection", 2068), ("error", 2072),
        ]),
        ("xsd_sockmsg", XsdSockmsg::FIELDS, 16, &[("type_", 0), ("req_id", 4), ("tx_id", 8), ("len", 12)]),
        ("xen_feature_info", XenFeatureInfo::FIELDS, 8, &[("submap_idx", 0), ("submap", 4)]),
        ("xen_compile_info", XenCompileInfo::FIELDS, 144, &[
            ("compiler", 0), ("compile_by", 64), ("compile_domain", 80), ("compile_date", 112),
        ]),
        ("e820entry", E820Entry::FIELDS, 20, &[("addr", 0), ("size", 8), ("type_", 16)]),
    ];
    for &(name, fields, size, offsets) in table {
        let end = fields.iter().map(|f| f.offset + f.size).max().unwrap();
        assert!(end <= size, "{name}: fields end at {end}, beyond {size}");
        for &(field, offset) in offsets {
            let f = xen_abi::field(fields, field).unwrap_or_else(|| panic!("{name}.{field}: no such field"));
            assert_eq!(f.offset, offset, "{name}.{field}");
        }
    }
    assert_eq!(HvmStartInfo::SIZE, 56);
    assert_eq!(SharedInfo::SIZE, 3136);
    assert_eq!(VcpuInfo::SIZE, 64);
    assert_eq!(VcpuTimeInfo::SIZE, 32);
    assert_eq!(XenconsInterface::SIZE, 3088);
    assert_eq!(XenstoreDomainInterface::SIZE, 2076);
    assert_eq!(GnttabMapGrantRef::SIZE, 32);
    assert_eq!(GnttabCopy::SIZE, 40);
    assert_eq!(GrantEntryV2::SIZE, 16);
    assert_eq!(VcpuRunstateInfo::SIZE, 48);
    assert_eq!(XsdSockmsg::SIZE, 16);
    // 512 v1 grant entries per 4 KiB frame.
    assert_eq!(4096 / GrantEntryV1::SIZE, 512);
}

/// Bytes built field by field, as a C program would lay them out, decode to the right fields.
#[test]
fn hand_built_bytes() {
    // hvm_start_info v1 (as the old test-guest parser test built it).
    let mut b = Vec::new();
    b.extend_from_slice(&XEN_HVM_START_MAGIC_VALUE.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&SIF_INITDOMAIN.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&0x1000u64.to_le_bytes());
    b.extend_from_slice(&0x2000u64.to_le_bytes());
    b.extend_from_slice(&0x3000u64.to_le_bytes());
    b.extend_from_slice(&0x4000u64.to_le_bytes());
    b.extend_from_slice(&3u32.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    let si = HvmStartInfo::read_from(&b).unwrap();
    assert_eq!(
        si,
        HvmStartInfo {
            magic: XEN_HVM_START_MAGIC_VALUE,
            version: 1,
            flags: SIF_INITDOMAIN,
            nr_modules: 1,
            modlist_paddr: 0x1000,
            cmdline_paddr: 0x2000,
            rsdp_paddr: 0x3000,
            memmap_paddr: 0x4000,
            memmap_entries: 3,
            reserved: 0,
        }
    );
    assert_eq!(si.to_bytes().to_vec(), b);

    // Linux's HVMOP_set_param(HVM_PARAM_CALLBACK_IRQ, vector 0xf3).
    let p = XenHvmParam { domid: DOMID_SELF, pad: 0, index: HVM_PARAM_CALLBACK_IRQ, value: callback_via_vector(0xf3) };
    assert_eq!(p.to_bytes(), [0xf0, 0x7f, 0, 0, 0, 0, 0, 0, 0xf3, 0, 0, 0, 0, 0, 0, 0x02],);

    // evtchn_status of an interdomain port: dom 0, port 5 of the remote.
    let mut s =
        EvtchnStatus { dom: DOMID_SELF, port: 7, status: EVTCHNSTAT_INTERDOMAIN, vcpu: 1, ..Default::default() };
    s.u = EvtchnStatusU::from_interdomain(0, 5);
    let bytes = s.to_bytes();
    assert_eq!(&bytes[16..24], &[0, 0, 0, 0, 5, 0, 0, 0]);
    assert_eq!(EvtchnStatus::from_bytes(&bytes).u.interdomain(), (0, 5));
    assert_eq!(EvtchnStatusU::from_virq(VIRQ_TIMER + 1).virq(), VIRQ_DEBUG);
    assert_eq!(EvtchnStatusU::from_unbound(3).unbound_dom(), 3);
    assert_eq!(EvtchnStatusU::from_pirq(9).pirq(), 9);

    // gnttab_copy from a grant reference to a local frame.
    let c = GnttabCopy {
        source: GnttabCopyPtr { u: GnttabCopyPtrU::from_gref(0x11), domid: 3, offset: 0x100 },
        dest: GnttabCopyPtr { u: GnttabCopyPtrU::from_gmfn(0x1_2345_6789), domid: DOMID_SELF, offset: 0 },
        len: 512,
        flags: GNTCOPY_SOURCE_GREF,
        status: GNTST_OKAY,
    };
    let bytes = c.to_bytes();
    assert_eq!(&bytes[0..12], &[0x11, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 1]);
    assert_eq!(&bytes[16..24], &0x1_2345_6789u64.to_le_bytes());
    assert_eq!(&bytes[32..38], &[0, 2, 1, 0, 0, 0]);
    let back = GnttabCopy::from_bytes(&bytes);
    assert_eq!(back.source.u.gref(), 0x11);
    assert_eq!(back.dest.u.gmfn(), 0x1_2345_6789);
    assert_eq!(GnttabCacheFlushA::from_gref(4).gref(), 4);
    assert_eq!(GnttabCacheFlushA::from_dev_bus_addr(1 << 40).dev_bus_addr(), 1 << 40);

    // grant_entry_v2 forms.
    let hdr = GrantEntryHeader { flags: GTF_PERMIT_ACCESS | GTF_SUB_PAGE, domid: 2 };
    let e = GrantEntryV2::from_sub_page(hdr, 0x80, 0x40, 0xabcd);
    assert_eq!(e.hdr(), hdr);
    assert_eq!(e.sub_page(), (0x80, 0x40, 0xabcd));
    assert_eq!(e.full_page_frame(), 0xabcd);
    let t = GrantEntryV2::from_transitive(GrantEntryHeader { flags: GTF_TRANSITIVE, domid: 4 }, 6, 99);
    assert_eq!(t.transitive(), (6, 99));
    assert_eq!(&t.raw[..8], &[3, 0, 4, 0, 6, 0, 0, 0]);

    // vcpu_hvm_context in 64-bit mode.
    let regs = VcpuHvmX86_64 { rip: 0x10_0000, cr0: 0x8000_0011, efer: 0x500, ..Default::default() };
    let ctx = VcpuHvmContext { mode: VCPU_HVM_MODE_64B, pad: 0, cpu_regs: VcpuHvmCpuRegs::from_x86_64(&regs) };
    let bytes = ctx.to_bytes();
    assert_eq!(&bytes[0..4], &[1, 0, 0, 0]);
    assert_eq!(&bytes[8 + 64..8 + 72], &0x10_0000u64.to_le_bytes());
    assert_eq!(VcpuHvmContext::from_bytes(&bytes).cpu_regs.x86_64(), regs);
    let regs32 = VcpuHvmX86_32 { eip: 0x1000, cs_ar: 0xc9b, pad2: [0; 3], ..Default::default() };
    assert_eq!(VcpuHvmCpuRegs::from_x86_32(&regs32).x86_32(), regs32);

    // A shared_info with port 70 pending and vCPU 1's pvclock set.
    let mut sh = SharedInfo::default();
    sh.evtchn_pending[70 / 64] |= 1 << (70 % 64);
    sh.vcpu_info[1].time.tsc_shift = -1;
    sh.vcpu_info[1].time.flags = XEN_PVCLOCK_TSC_STABLE_BIT;
    let bytes = sh.to_bytes();
    assert_eq!(bytes[2048 + 8], 1 << 6);
    assert_eq!(bytes[64 + 32 + 28], 0xff);
    assert_eq!(bytes[64 + 32 + 29], 1);
    assert_eq!(SharedInfo::from_bytes(&bytes), sh);

    // The packed E820 entries of XENMEM_memory_map follow each other every 20 bytes.
    let e = E820Entry { addr: 0x10_0000, size: 0x7f0_0000, type_: XEN_HVM_MEMMAP_TYPE_RAM };
    let bytes = e.to_bytes();
    assert_eq!(&bytes[16..20], &[1, 0, 0, 0]);
    assert_eq!(E820Entry::read_from(&bytes).unwrap(), e);
}
