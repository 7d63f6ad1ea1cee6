//! A real guest: Debian's stock Linux kernel (`linux-image-amd64`) booted as a PVH domain.
//!
//! `cargo xtask linux` fetches it (see `xtask/src/linux.rs`): `apt-get download` of the kernel
//! package and of `busybox-static`, the ELF `vmlinux` taken out of the bzImage `vmlinuz`
//! ([`extract_vmlinux`]: the xz payload located through the boot protocol header, decompressed
//! with `xz`, checked for the PVH entry note), all cached under `target/linux/`. The tests get
//! the paths from the environment ([`vmlinux`], [`busybox`]) and build their initramfs with
//! [`crate::initramfs`]; a missing kernel is a test failure, never a skip.
//!
//! [`LinuxReport`] reads what the default `/init` printed, from the serial log of a direct
//! boot or from the `(dN) ` console lines of a domain.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::image;
use crate::initramfs::{MARKER_DONE, MARKER_POWEROFF_FAILED, MARKER_UP};

/// Environment variable naming the ELF vmlinux extracted from Debian's kernel.
pub const ENV_LINUX_VMLINUX: &str = "FERROVISOR_LINUX_VMLINUX";
/// Environment variable naming the default initramfs (`cargo xtask linux` builds it).
pub const ENV_LINUX_INITRD: &str = "FERROVISOR_LINUX_INITRD";
/// Environment variable naming Debian's static busybox (tests build their own initramfs).
pub const ENV_BUSYBOX: &str = "FERROVISOR_BUSYBOX";
/// Environment variable carrying the kernel's version string (informational).
pub const ENV_LINUX_VERSION: &str = "FERROVISOR_LINUX_VERSION";
/// Environment variable naming the unpacked tree of Debian's xenstore tools and the libraries
/// they need (`xenstore-utils`, `libxenstore4`, `libxentoolcore1`, `libc6`).
pub const ENV_XENSTORE_ROOT: &str = "FERROVISOR_XENSTORE_ROOT";
/// Set by `cargo xtask test` when fetching the kernel failed: why.
pub const ENV_LINUX_FETCH_ERROR: &str = "FERROVISOR_LINUX_FETCH_ERROR";

/// The xz stream magic.
pub const XZ_MAGIC: &[u8; 6] = b"\xfd7zXZ\x00";
/// The bzImage boot protocol header signature `HdrS` at 0x202.
pub const HDRS_MAGIC: &[u8; 4] = b"HdrS";

fn from_env(var: &str, what: &str) -> PathBuf {
    let why = match std::env::var(ENV_LINUX_FETCH_ERROR) {
        Ok(e) if !e.is_empty() => format!("fetching Debian's kernel failed: {e}"),
        _ => "run the Linux tests through `cargo xtask test` (or `cargo xtask linux` first and set the \
              variables it prints), which fetch Debian's linux-image-amd64 and busybox-static with apt-get"
            .to_owned(),
    };
    let Some(path) = std::env::var_os(var) else {
        panic!("{var} is not set, so there is no {what} to boot: {why}");
    };
    let path = PathBuf::from(path);
    assert!(path.is_file(), "{var}={} does not exist: {why}", path.display());
    path
}

/// The ELF vmlinux (`FERROVISOR_LINUX_VMLINUX`); panics saying why it is missing.
pub fn vmlinux() -> PathBuf {
    from_env(ENV_LINUX_VMLINUX, "Debian Linux kernel")
}

/// Debian's bzImage of the same kernel (`vmlinuz-RELEASE`), which `cargo xtask linux` keeps
/// beside the vmlinux (in `kernel/boot/`); panics saying why it is missing.
pub fn vmlinuz() -> PathBuf {
    let vmlinux = vmlinux();
    let name = vmlinux.file_name().and_then(|n| n.to_str()).unwrap_or_default().replacen("vmlinux-", "vmlinuz-", 1);
    let path = vmlinux.parent().unwrap_or(Path::new(".")).join("kernel").join("boot").join(name);
    assert!(path.is_file(), "{} does not exist (run `cargo xtask linux --refresh`)", path.display());
    path
}

/// Debian's static busybox (`FERROVISOR_BUSYBOX`); panics saying why it is missing.
pub fn busybox() -> PathBuf {
    from_env(ENV_BUSYBOX, "busybox for the initramfs")
}

/// The unpacked tree of Debian's xenstore tools (`FERROVISOR_XENSTORE_ROOT`, for
/// [`crate::initramfs::Initramfs::xenstore_tools`]); panics saying why it is missing.
pub fn xenstore_root() -> PathBuf {
    let path = std::env::var_os(ENV_XENSTORE_ROOT).map(PathBuf::from);
    match path {
        Some(p) if p.join("usr/bin/xenstore").is_file() => p,
        _ => {
            // Same explanation as for the kernel: they are fetched together.
            let _ = from_env(ENV_LINUX_VMLINUX, "Debian Linux kernel");
            panic!(
                "{ENV_XENSTORE_ROOT} is not set or has no usr/bin/xenstore: run the test through `cargo xtask test` \
                 (`cargo xtask linux` fetches Debian's xenstore-utils with its libraries)"
            )
        }
    }
}

/// The kernel's version string, if xtask passed it.
pub fn version() -> Option<String> {
    std::env::var(ENV_LINUX_VERSION).ok().filter(|v| !v.is_empty())
}

fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(off..off + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(off..off + 4)?.try_into().ok()?))
}

/// Where the compressed kernel lies in a bzImage: `(offset, length)`. From the boot protocol
/// header (2.08+: `payload_offset` at 0x248 and `payload_length` at 0x24c, relative to the
/// protected-mode code after `(setup_sects + 1) * 512` bytes) when that points at an xz
/// stream; otherwise the first xz magic in the file, to its end.
pub fn bzimage_payload(b: &[u8]) -> Result<(usize, usize), String> {
    if b.get(0x202..0x206) == Some(HDRS_MAGIC) && u16_at(b, 0x206).is_some_and(|v| v >= 0x208) {
        let setup_sects = match b[0x1f1] {
            0 => 4,
            n => usize::from(n),
        };
        let start = (setup_sects + 1) * 512 + u32_at(b, 0x248).unwrap_or(0) as usize;
        let len = u32_at(b, 0x24c).unwrap_or(0) as usize;
        if b.get(start..start + 6) == Some(XZ_MAGIC) && start + len <= b.len() {
            return Ok((start, len));
        }
    }
    match b.windows(XZ_MAGIC.len()).position(|w| w == XZ_MAGIC) {
        Some(start) => Ok((start, b.len() - start)),
        None => {
            Err("no xz stream (magic FD 37 7A 58 5A 00) in the kernel image: not a CONFIG_KERNEL_XZ bzImage".into())
        }
    }
}

/// The version string in a bzImage header (`kernel_version` at 0x20e), e.g.
/// `6.1.0-56-amd64 (debian-kernel@lists.debian.org) #1 SMP PREEMPT_DYNAMIC Debian 6.1.192-2 (...)`.
pub fn bzimage_version(b: &[u8]) -> Option<String> {
    if b.get(0x202..0x206) != Some(HDRS_MAGIC) {
        return None;
    }
    let off = usize::from(u16_at(b, 0x20e)?) + 0x200;
    let tail = b.get(off..)?;
    let end = tail.iter().position(|&c| c == 0)?.min(256);
    let s = std::str::from_utf8(&tail[..end]).ok()?;
    (!s.is_empty()).then(|| s.to_owned())
}

/// Decompresses one xz stream with the `xz` command (Debian package `xz-utils`; it handles
/// the x86 BCJ filter the kernel's stream uses). Bytes after the stream are ignored.
pub fn decompress_xz(stream: &[u8]) -> Result<Vec<u8>, String> {
    let mut child = Command::new("xz")
        .args(["--decompress", "--stdout", "--single-stream"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run xz (Debian package xz-utils): {e}"))?;
    let mut stdin = child.stdin.take().expect("piped");
    let out = std::thread::scope(|s| {
        let writer = s.spawn(move || stdin.write_all(stream));
        let out = child.wait_with_output();
        // xz stops reading after the stream: a broken pipe is expected with trailing bytes.
        let _ = writer.join();
        out
    })
    .map_err(|e| format!("running xz: {e}"))?;
    if !out.status.success() {
        return Err(format!("xz failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(out.stdout)
}

/// The ELF vmlinux inside a bzImage, checked: ELF64 x86-64 with a PVH entry note
/// (`XEN_ELFNOTE_PHYS32_ENTRY`, type 18). Returns the ELF and its PVH entry.
pub fn extract_vmlinux(bzimage: &[u8]) -> Result<(Vec<u8>, u64), String> {
    let (start, len) = bzimage_payload(bzimage)?;
    let elf = decompress_xz(&bzimage[start..start + len])?;
    image::check_elf64(&elf).map_err(|e| format!("the decompressed kernel is not a usable ELF: {e}"))?;
    let entry = image::pvh_entry(&elf).map_err(|e| format!("the decompressed kernel cannot boot as PVH: {e}"))?;
    Ok((elf, entry))
}

/// What the default `/init` ([`crate::initramfs::InitScript::marker_test`]) printed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinuxReport {
    /// The `up` marker appeared.
    pub up: bool,
    /// The `done` marker appeared.
    pub done: bool,
    /// `poweroff -f` returned.
    pub poweroff_failed: bool,
    /// `CPUS=`.
    pub cpus: Option<u32>,
    /// `CLOCKSOURCE=`.
    pub clocksource: Option<String>,
    /// Guest time at the `up` marker, ns (`UPTIME_NS=`, or `UPTIME=` seconds scaled).
    pub uptime_ns: Option<u64>,
}

impl LinuxReport {
    /// From the guest's console lines (any line-end debris is trimmed; kernel printk lines
    /// that merely contain the words do not count: the line must be exactly the marker, or
    /// start with `KEY=`).
    pub fn parse<'a>(lines: impl IntoIterator<Item = &'a str>) -> LinuxReport {
        let mut r = LinuxReport::default();
        for raw in lines {
            let l = raw.trim_matches(|c: char| c.is_whitespace() || c.is_control());
            if l == MARKER_UP {
                r.up = true;
            } else if l == MARKER_DONE {
                r.done = true;
            } else if l == MARKER_POWEROFF_FAILED {
                r.poweroff_failed = true;
            } else if let Some(v) = l.strip_prefix("CPUS=") {
                r.cpus = r.cpus.or(v.trim().parse().ok());
            } else if let Some(v) = l.strip_prefix("CLOCKSOURCE=") {
                r.clocksource = r.clocksource.take().or(Some(v.trim().to_owned()));
            } else if let Some(v) = l.strip_prefix("UPTIME_NS=") {
                r.uptime_ns = r.uptime_ns.or(v.trim().parse().ok());
            } else if let Some(v) = l.strip_prefix("UPTIME=") {
                r.uptime_ns = r.uptime_ns.or(parse_seconds_ns(v.trim()));
            }
        }
        r
    }
}

/// One `XS check=<name> result=pass|fail value=<text>` line of
/// [`crate::initramfs::InitScript::xenstore_test`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XsCheck {
    /// `check=`.
    pub name: String,
    /// `result=pass`.
    pub pass: bool,
    /// Everything after `value=` (may hold spaces; newlines were turned into commas).
    pub value: String,
}

impl XsCheck {
    /// Parses one console line (line-end debris trimmed); `None` unless it is such a line.
    pub fn parse(raw: &str) -> Option<XsCheck> {
        let l = raw.trim_matches(|c: char| c.is_whitespace() || c.is_control());
        let rest = l.strip_prefix(crate::initramfs::XS_MARKER)?.strip_prefix(" check=")?;
        let (name, rest) = rest.split_once(" result=")?;
        let (result, value) = match rest.split_once(" value=") {
            Some((r, v)) => (r, v),
            None => (rest.strip_suffix(" value").unwrap_or(rest), ""),
        };
        if name.is_empty() || name.contains(' ') {
            return None;
        }
        let pass = match result {
            "pass" => true,
            "fail" => false,
            _ => return None,
        };
        Some(XsCheck { name: name.to_owned(), pass, value: value.to_owned() })
    }
}

/// Every `XS check=` line among `lines`.
pub fn xs_checks<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<XsCheck> {
    lines.into_iter().filter_map(XsCheck::parse).collect()
}

/// What is wrong with the xenstore checks of domain `domid` called `name`: each of
/// [`crate::initramfs::XS_CHECKS`] reported exactly once and passed, `read_name` read `name`
/// and `read_domid` read `domid`. Empty when all is well.
pub fn xs_problems(checks: &[XsCheck], name: &str, domid: u32) -> Vec<String> {
    let mut problems = Vec::new();
    for want in crate::initramfs::XS_CHECKS {
        let found: Vec<&XsCheck> = checks.iter().filter(|c| c.name == *want).collect();
        match found.as_slice() {
            [] => problems.push(format!("no `XS check={want}` line")),
            [c] if !c.pass => problems.push(format!("check {want} failed: value={}", c.value)),
            [_] => {}
            more => problems.push(format!("{} `XS check={want}` lines", more.len())),
        }
    }
    for c in checks {
        if !crate::initramfs::XS_CHECKS.contains(&c.name.as_str()) {
            problems.push(format!("unknown check {}", c.name));
        }
    }
    let value_of = |n: &str| checks.iter().find(|c| c.name == n).map(|c| c.value.as_str());
    if let Some(v) = value_of("read_name").filter(|v| *v != name) {
        problems.push(format!("read_name read {v:?}, expected {name:?}"));
    }
    if let Some(v) = value_of("read_domid").filter(|v| *v != domid.to_string()) {
        problems.push(format!("read_domid read {v:?}, expected {domid}"));
    }
    problems
}

/// `12.34` seconds as nanoseconds.
fn parse_seconds_ns(s: &str) -> Option<u64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u64 = int.parse().ok()?;
    let frac_ns: u64 = if frac.is_empty() { 0 } else { format!("{frac:0<9}").parse().ok()? };
    whole.checked_mul(1_000_000_000)?.checked_add(frac_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake bzImage: `HdrS` header, setup_sects, payload_offset/length, then junk, a fake
    /// xz magic in the setup code, and the real payload.
    fn fake_bzimage(payload: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 5 * 512];
        b[0x1f1] = 4;
        b[0x202..0x206].copy_from_slice(HDRS_MAGIC);
        b[0x206..0x208].copy_from_slice(&0x20fu16.to_le_bytes());
        b[0x20e..0x210].copy_from_slice(&0x100u16.to_le_bytes());
        b[0x300..0x305].copy_from_slice(b"6.1.0");
        b[0x400..0x406].copy_from_slice(XZ_MAGIC); // a decoy before the payload
        let offset = 100u32;
        b.extend(std::iter::repeat_n(0xaa, offset as usize));
        b[0x248..0x24c].copy_from_slice(&offset.to_le_bytes());
        b[0x24c..0x250].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        b.extend_from_slice(payload);
        b.extend_from_slice(&[1, 2, 3, 4]); // trailing size word
        b
    }

    #[test]
    fn payload_from_header() {
        let mut payload = XZ_MAGIC.to_vec();
        payload.extend_from_slice(b"rest of stream");
        let b = fake_bzimage(&payload);
        let (start, len) = bzimage_payload(&b).unwrap();
        assert_eq!(&b[start..start + len], payload.as_slice());
        assert_eq!(bzimage_version(&b).as_deref(), Some("6.1.0"));
    }

    #[test]
    fn payload_by_scanning() {
        let mut b = vec![0u8; 300];
        b.extend_from_slice(XZ_MAGIC);
        b.extend_from_slice(b"xyz");
        assert_eq!(bzimage_payload(&b).unwrap(), (300, 9));
        assert!(bzimage_payload(&[0u8; 1000]).is_err());
        assert_eq!(bzimage_version(&b), None);
    }

    /// Through the real `xz` when installed: a compressed ELF-looking stream with trailing
    /// bytes comes back whole.
    #[test]
    fn xz_round_trip() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let Ok(mut child) = Command::new("xz")
            .args(["--compress", "--stdout", "--check=crc32"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
        else {
            eprintln!("xz is not installed (Debian package xz-utils); skipping the round trip");
            return;
        };
        child.stdin.take().unwrap().write_all(&data).unwrap();
        let mut stream = child.wait_with_output().unwrap().stdout;
        assert_eq!(&stream[..6], XZ_MAGIC);
        stream.extend_from_slice(&[0x11, 0x22, 0x33, 0x44]);
        assert_eq!(decompress_xz(&stream).unwrap(), data);
        assert!(decompress_xz(b"\xfd7zXZ\x00garbage").is_err());
    }

    #[test]
    fn report_lines() {
        let log = "[    1.0] Run /init as init process\r\n\
                   FERROVISOR-LINUX-MARKER up\r\n\
                   UPTIME_NS=1234567890\r\n\
                   CPUS=2\r\n\
                   CLOCKSOURCE=xen\r\n\
                   FERROVISOR-LINUX-MARKER done\r\n\
                   [    3.0] reboot: Power down\r\n";
        let r = LinuxReport::parse(log.lines());
        assert_eq!(
            r,
            LinuxReport {
                up: true,
                done: true,
                poweroff_failed: false,
                cpus: Some(2),
                clocksource: Some("xen".into()),
                uptime_ns: Some(1_234_567_890),
            }
        );
        let r = LinuxReport::parse(["UPTIME=2.57 4.80", "echo FERROVISOR-LINUX-MARKER up"]);
        assert_eq!(r.uptime_ns, None);
        assert!(!r.up);
        let r = LinuxReport::parse(["UPTIME=2.57"]);
        assert_eq!(r.uptime_ns, Some(2_570_000_000));
        assert_eq!(parse_seconds_ns("3"), Some(3_000_000_000));
        assert_eq!(parse_seconds_ns("x.5"), None);
    }

    #[test]
    fn xs_check_lines() {
        let c = XsCheck::parse("XS check=read_name result=pass value=linux-a\r").unwrap();
        assert_eq!(c, XsCheck { name: "read_name".into(), pass: true, value: "linux-a".into() });
        let c = XsCheck::parse("XS check=peer_ls_denied result=pass value=xenstore-ls: xs_directory (/local/domain/2/name): Permission denied").unwrap();
        assert_eq!(c.value, "xenstore-ls: xs_directory (/local/domain/2/name): Permission denied");
        let c = XsCheck::parse("XS check=watch result=fail value=").unwrap();
        assert!(!c.pass && c.value.is_empty());
        assert_eq!(XsCheck::parse("XS check=x result=maybe value=1"), None);
        assert_eq!(XsCheck::parse("XS start peer=2"), None);
        assert_eq!(XsCheck::parse("echo XS check=x result=pass value=1"), None);
        assert_eq!(XsCheck::parse("XS check= result=pass value=1"), None);
    }

    #[test]
    fn xs_judgement() {
        let all: Vec<String> = crate::initramfs::XS_CHECKS
            .iter()
            .map(|c| match *c {
                "read_name" => "XS check=read_name result=pass value=a".to_owned(),
                "read_domid" => "XS check=read_domid result=pass value=1".to_owned(),
                c => format!("XS check={c} result=pass value=ok"),
            })
            .collect();
        let mut lines: Vec<&str> = vec!["[ 1.0] xenbus: something", "XS start peer=2"];
        lines.extend(all.iter().map(String::as_str));
        let checks = xs_checks(lines.iter().copied());
        assert_eq!(checks.len(), crate::initramfs::XS_CHECKS.len());
        assert!(xs_problems(&checks, "a", 1).is_empty());
        assert_eq!(xs_problems(&checks, "b", 1), ["read_name read \"a\", expected \"b\""]);
        assert_eq!(xs_problems(&checks, "a", 2), ["read_domid read \"1\", expected 2"]);
        let mut bad = checks.clone();
        bad.retain(|c| c.name != "watch");
        bad.iter_mut().find(|c| c.name == "peer_read_denied").unwrap().pass = false;
        bad.push(bad[0].clone());
        let p = xs_problems(&bad, "a", 1);
        assert!(p.iter().any(|p| p == "no `XS check=watch` line"), "{p:?}");
        assert!(p.iter().any(|p| p.starts_with("check peer_read_denied failed")), "{p:?}");
        assert!(p.iter().any(|p| p == "2 `XS check=dev_xenbus` lines"), "{p:?}");
        assert!(!xs_problems(&[], "a", 1).is_empty());
    }
}
