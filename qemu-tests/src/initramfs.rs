//! Initramfs images for Linux guests: a `newc` cpio writer (and a reader, for tests), and a
//! builder that puts Debian's static busybox, its applet links, `/dev/console` and an `/init`
//! script into an uncompressed archive (Linux accepts uncompressed and compressed initramfs
//! alike; uncompressed saves the guest a decompression).
//!
//! The default `/init` ([`InitScript::marker_test`]) is what the Linux tests and the bench
//! look for:
//!
//! ```text
//! FERROVISOR-LINUX-MARKER up
//! UPTIME_NS=<ktime of the marker, ns>      (or UPTIME=<s.cc> without /proc/timer_list)
//! CPUS=<number of processors in /proc/cpuinfo>
//! CLOCKSOURCE=<current clocksource>
//! FERROVISOR-LINUX-MARKER done
//! ```
//!
//! then `poweroff -f`. Tests that need more (xenstore tools, modules) add files with
//! [`Initramfs::file`] and commands with [`InitScript::command`]; every script mounts proc,
//! sysfs and devtmpfs first and prints the `done` marker and powers off last.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The marker line `/init` prints once userspace runs.
pub const MARKER_UP: &str = "FERROVISOR-LINUX-MARKER up";
/// The marker line `/init` prints after its last command, before powering off.
pub const MARKER_DONE: &str = "FERROVISOR-LINUX-MARKER done";
/// Printed if `poweroff -f` returned (it must not).
pub const MARKER_POWEROFF_FAILED: &str = "FERROVISOR-LINUX-MARKER poweroff-failed";

/// File type bits of `st_mode`.
pub const S_IFMT: u32 = 0o170000;
/// Directory.
pub const S_IFDIR: u32 = 0o040000;
/// Regular file.
pub const S_IFREG: u32 = 0o100000;
/// Symbolic link.
pub const S_IFLNK: u32 = 0o120000;
/// Character device.
pub const S_IFCHR: u32 = 0o020000;

/// The `newc` magic.
pub const NEWC_MAGIC: &[u8; 6] = b"070701";
/// The name of the entry that ends an archive.
pub const TRAILER: &str = "TRAILER!!!";
const HEADER_LEN: usize = 110;

/// One archive member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpioEntry {
    /// Path inside the archive, without a leading `/`.
    pub name: String,
    /// `st_mode`: type bits and permissions.
    pub mode: u32,
    /// Inode number.
    pub ino: u32,
    /// Link count.
    pub nlink: u32,
    /// Device number (character and block devices).
    pub rdev: (u32, u32),
    /// File contents, or the target of a symlink.
    pub data: Vec<u8>,
}

impl CpioEntry {
    /// The type bits of the mode.
    pub fn kind(&self) -> u32 {
        self.mode & S_IFMT
    }
}

/// Writes a `newc` ("SVR4 with no CRC") cpio archive, the format Linux unpacks as initramfs.
/// Owners are root, times 0 (reproducible archives). Missing parent directories are added.
#[derive(Debug, Default)]
pub struct CpioWriter {
    out: Vec<u8>,
    next_ino: u32,
    paths: BTreeSet<String>,
    dirs: BTreeSet<String>,
}

fn normalize(path: &str) -> Result<String, String> {
    let p = path.trim_start_matches('/');
    if p.is_empty()
        || p.split('/').any(|c| c.is_empty() || c == "." || c == "..")
        || p.bytes().any(|b| b == 0 || b == b'\n')
    {
        return Err(format!("bad archive path {path:?}"));
    }
    Ok(p.to_owned())
}

fn pad4(out: &mut Vec<u8>) {
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

impl CpioWriter {
    /// An empty archive.
    pub fn new() -> Self {
        CpioWriter { next_ino: 1, ..Default::default() }
    }

    fn header(&mut self, name: &str, mode: u32, nlink: u32, rdev: (u32, u32), data: &[u8]) -> Result<(), String> {
        let size = u32::try_from(data.len()).map_err(|_| format!("{name}: larger than 4 GiB"))?;
        let ino = if name == TRAILER {
            0
        } else {
            let i = self.next_ino;
            self.next_ino += 1;
            i
        };
        let namesize = name.len() + 1;
        let fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev.0, rdev.1, namesize as u32, 0];
        self.out.extend_from_slice(NEWC_MAGIC);
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        pad4(&mut self.out);
        self.out.extend_from_slice(data);
        pad4(&mut self.out);
        Ok(())
    }

    fn add(&mut self, path: &str, mode: u32, rdev: (u32, u32), data: &[u8]) -> Result<(), String> {
        let name = normalize(path)?;
        if name == TRAILER {
            return Err(format!("{TRAILER} is reserved"));
        }
        if let Some((parent, _)) = name.rsplit_once('/') {
            self.dir(parent)?;
        }
        if !self.paths.insert(name.clone()) {
            return Err(format!("{name} is in the archive twice"));
        }
        let nlink = if mode & S_IFMT == S_IFDIR { 2 } else { 1 };
        self.header(&name, mode, nlink, rdev, data)
    }

    /// A directory with permissions 0755 (and its missing parents); no-op if present.
    pub fn dir(&mut self, path: &str) -> Result<(), String> {
        let name = normalize(path)?;
        if self.dirs.contains(&name) {
            return Ok(());
        }
        self.dirs.insert(name.clone());
        self.add(&name, S_IFDIR | 0o755, (0, 0), &[])
    }

    /// A regular file with permission bits `perm` (e.g. 0o755).
    pub fn file(&mut self, path: &str, perm: u32, data: &[u8]) -> Result<(), String> {
        self.add(path, S_IFREG | (perm & 0o7777), (0, 0), data)
    }

    /// A symbolic link `path` -> `target`.
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<(), String> {
        self.add(path, S_IFLNK | 0o777, (0, 0), target.as_bytes())
    }

    /// A character device node.
    pub fn char_dev(&mut self, path: &str, perm: u32, major: u32, minor: u32) -> Result<(), String> {
        self.add(path, S_IFCHR | (perm & 0o7777), (major, minor), &[])
    }

    /// Ends the archive (`TRAILER!!!`, padded to 512 bytes) and returns it.
    pub fn finish(mut self) -> Vec<u8> {
        self.header(TRAILER, 0, 1, (0, 0), &[]).expect("the trailer is small");
        while self.out.len() % 512 != 0 {
            self.out.push(0);
        }
        self.out
    }
}

fn hex_field(h: &[u8], i: usize) -> Result<u32, String> {
    let s = std::str::from_utf8(&h[6 + 8 * i..14 + 8 * i]).map_err(|_| "non-ASCII header field".to_owned())?;
    u32::from_str_radix(s, 16).map_err(|_| format!("bad header field {s:?}"))
}

/// Reads a `newc` archive up to its trailer (for tests; strict about the format).
pub fn parse_newc(bytes: &[u8]) -> Result<Vec<CpioEntry>, String> {
    let mut out = Vec::new();
    let mut off = 0usize;
    loop {
        let h = bytes.get(off..off + HEADER_LEN).ok_or_else(|| format!("truncated header at {off}"))?;
        if &h[..6] != NEWC_MAGIC {
            return Err(format!("no newc magic at offset {off}"));
        }
        let f = |i| hex_field(h, i);
        let (ino, mode, nlink, size, rmaj, rmin, namesize) = (f(0)?, f(1)?, f(4)?, f(6)?, f(9)?, f(10)?, f(11)?);
        let name_start = off + HEADER_LEN;
        let name_bytes = bytes
            .get(name_start..name_start + namesize as usize)
            .ok_or_else(|| format!("truncated name at {name_start}"))?;
        let name = std::str::from_utf8(name_bytes.strip_suffix(b"\0").ok_or("name not NUL-terminated")?)
            .map_err(|_| "name is not UTF-8".to_owned())?
            .to_owned();
        let data_start = (name_start + namesize as usize + 3) & !3;
        let data =
            bytes.get(data_start..data_start + size as usize).ok_or_else(|| format!("truncated data of {name}"))?;
        off = (data_start + size as usize + 3) & !3;
        if name == TRAILER {
            return Ok(out);
        }
        out.push(CpioEntry { name, mode, ino, nlink, rdev: (rmaj, rmin), data: data.to_vec() });
    }
}

/// An `/init` script for busybox's `sh`. See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InitScript {
    commands: Vec<String>,
}

impl InitScript {
    /// Only the mounts, the `done` marker and the power-off.
    pub fn new() -> Self {
        InitScript::default()
    }

    /// The default test script: the `up` marker, the time since boot, `sleep 1`, the CPU count
    /// and the clocksource.
    pub fn marker_test() -> Self {
        InitScript::new()
            .command(&format!("echo {MARKER_UP}"))
            .command(
                "if [ -r /proc/timer_list ]; then echo UPTIME_NS=$(awk '/^now at/ {print $3; exit}' /proc/timer_list); \
                 else echo UPTIME=$(cut -d' ' -f1 /proc/uptime); fi",
            )
            .command("sleep 1")
            .command("echo CPUS=$(grep -c ^processor /proc/cpuinfo)")
            .command("echo CLOCKSOURCE=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)")
    }

    /// Appends a shell command (run before the `done` marker).
    pub fn command(mut self, line: &str) -> Self {
        self.commands.push(line.to_owned());
        self
    }

    /// The script's text.
    pub fn render(&self) -> String {
        let mut s = String::from(
            "#!/bin/sh\n\
             # Ferrovisor test initramfs (qemu-tests/src/initramfs.rs)\n\
             export PATH=/bin:/sbin:/usr/bin:/usr/sbin\n\
             mount -t proc proc /proc\n\
             mount -t sysfs sysfs /sys\n\
             mount -t devtmpfs devtmpfs /dev\n",
        );
        for c in &self.commands {
            s.push_str(c);
            s.push('\n');
        }
        s.push_str(&format!("echo {MARKER_DONE}\npoweroff -f\necho {MARKER_POWEROFF_FAILED}\nsleep 5\n"));
        s
    }
}

/// Busybox applets linked into `/bin` by default.
pub const DEFAULT_APPLETS: &[&str] = &[
    "sh", "ash", "awk", "cat", "chmod", "cp", "cut", "date", "dd", "dmesg", "echo", "env", "false", "grep", "halt",
    "head", "hexdump", "insmod", "kill", "ln", "ls", "lsmod", "mkdir", "mknod", "modprobe", "mount", "mv", "od",
    "poweroff", "printf", "ps", "readlink", "reboot", "rm", "rmmod", "sed", "seq", "sleep", "sort", "stat", "sync",
    "sysctl", "tail", "tee", "test", "touch", "tr", "true", "umount", "uname", "uniq", "wc", "xargs", "[",
];

/// An initramfs: busybox, its applet links, the usual directories, `/dev/console`, `/init`,
/// and any extra files.
#[derive(Debug, Clone)]
pub struct Initramfs {
    busybox: PathBuf,
    applets: Vec<String>,
    init: InitScript,
    files: Vec<(String, u32, Vec<u8>)>,
}

impl Initramfs {
    /// With `busybox` (a static busybox binary), [`DEFAULT_APPLETS`] and [`InitScript::marker_test`].
    pub fn new(busybox: &Path) -> Self {
        Initramfs {
            busybox: busybox.to_path_buf(),
            applets: DEFAULT_APPLETS.iter().map(|s| (*s).to_owned()).collect(),
            init: InitScript::marker_test(),
            files: Vec::new(),
        }
    }

    /// Replaces the `/init` script.
    pub fn init(mut self, script: InitScript) -> Self {
        self.init = script;
        self
    }

    /// Adds applet links `/bin/<name>` -> busybox.
    pub fn applets(mut self, names: &[&str]) -> Self {
        for n in names {
            if !self.applets.iter().any(|a| a == n) {
                self.applets.push((*n).to_owned());
            }
        }
        self
    }

    /// Adds a regular file (`perm`: permission bits, e.g. 0o644).
    pub fn file(mut self, path: &str, perm: u32, data: Vec<u8>) -> Self {
        self.files.push((path.to_owned(), perm, data));
        self
    }

    /// The archive.
    pub fn build(&self) -> Result<Vec<u8>, String> {
        let busybox = std::fs::read(&self.busybox).map_err(|e| {
            format!(
                "reading busybox {}: {e} (Debian package busybox-static; `cargo xtask linux`)",
                self.busybox.display()
            )
        })?;
        let mut w = CpioWriter::new();
        for d in ["bin", "sbin", "etc", "proc", "sys", "dev", "tmp", "root", "usr/bin", "usr/sbin"] {
            w.dir(d)?;
        }
        w.char_dev("dev/console", 0o600, 5, 1)?;
        w.char_dev("dev/null", 0o666, 1, 3)?;
        w.file("bin/busybox", 0o755, &busybox)?;
        for a in &self.applets {
            if a.contains('/') || a == "busybox" {
                return Err(format!("bad applet name {a:?}"));
            }
            w.symlink(&format!("bin/{a}"), "busybox")?;
        }
        w.file("init", 0o755, self.init.render().as_bytes())?;
        for (path, perm, data) in &self.files {
            w.file(path, *perm, data)?;
        }
        Ok(w.finish())
    }

    /// Writes the archive to `path` (through a temporary file, so a reader never sees half).
    pub fn write(&self, path: &Path) -> Result<(), String> {
        let bytes = self.build()?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
        }
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, &bytes).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, path).map_err(|e| format!("renaming {} to {}: {e}", tmp.display(), path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut w = CpioWriter::new();
        w.file("/bin/busybox", 0o755, b"\x7fELF fake").unwrap();
        w.symlink("bin/sh", "busybox").unwrap();
        w.char_dev("dev/console", 0o600, 5, 1).unwrap();
        w.file("init", 0o755, b"#!/bin/sh\necho hi\n").unwrap();
        w.file("etc/odd", 0o644, b"abc").unwrap();
        w.finish()
    }

    #[test]
    fn round_trip_through_own_parser() {
        let a = sample();
        assert_eq!(a.len() % 512, 0);
        assert_eq!(&a[..6], NEWC_MAGIC);
        let e = parse_newc(&a).unwrap();
        let names: Vec<&str> = e.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["bin", "bin/busybox", "bin/sh", "dev", "dev/console", "init", "etc", "etc/odd"]);
        let get = |n: &str| e.iter().find(|e| e.name == n).unwrap();
        assert_eq!(get("bin").kind(), S_IFDIR);
        assert_eq!(get("bin").mode & 0o777, 0o755);
        assert_eq!(get("bin/busybox").data, b"\x7fELF fake");
        assert_eq!(get("bin/busybox").mode, S_IFREG | 0o755);
        assert_eq!(get("bin/sh").kind(), S_IFLNK);
        assert_eq!(get("bin/sh").data, b"busybox");
        assert_eq!(get("dev/console").kind(), S_IFCHR);
        assert_eq!(get("dev/console").rdev, (5, 1));
        assert_eq!(get("etc/odd").data, b"abc");
        // Inodes are distinct.
        let inos: BTreeSet<u32> = e.iter().map(|e| e.ino).collect();
        assert_eq!(inos.len(), e.len());
    }

    #[test]
    fn rejects_bad_paths_and_duplicates() {
        let mut w = CpioWriter::new();
        assert!(w.file("a/../b", 0o644, b"").is_err());
        assert!(w.file("", 0o644, b"").is_err());
        assert!(w.file("a//b", 0o644, b"").is_err());
        assert!(w.file(TRAILER, 0o644, b"").is_err());
        w.file("x", 0o644, b"").unwrap();
        assert!(w.file("/x", 0o644, b"").is_err());
        assert!(parse_newc(b"070707 not newc").is_err());
        assert!(parse_newc(&sample()[..200]).is_err());
    }

    /// GNU cpio, when installed, lists the archive we wrote (Debian package `cpio`).
    #[test]
    fn system_cpio_lists_the_archive() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let child =
            Command::new("cpio").args(["-t", "-v", "--quiet"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn();
        let Ok(mut child) = child else {
            eprintln!("cpio is not installed; the round trip through our own parser covers the format");
            return;
        };
        child.stdin.take().unwrap().write_all(&sample()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "cpio -t failed: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 8, "{text}");
        assert!(lines.iter().any(|l| l.starts_with("lrwxrwxrwx") && l.ends_with("bin/sh -> busybox")), "{text}");
        assert!(lines.iter().any(|l| l.starts_with("crw-------") && l.contains("5,") && l.ends_with("dev/console")));
        assert!(lines.iter().any(|l| l.starts_with("-rwxr-xr-x") && l.ends_with("init")), "{text}");
    }

    #[test]
    fn init_script_shape() {
        let s = InitScript::marker_test().command("echo extra").render();
        assert!(s.starts_with("#!/bin/sh\n"));
        let pos = |needle: &str| s.find(needle).unwrap_or_else(|| panic!("{needle:?} missing:\n{s}"));
        assert!(pos("mount -t proc proc /proc") < pos(MARKER_UP));
        assert!(pos("mount -t devtmpfs devtmpfs /dev") < pos(MARKER_UP));
        assert!(pos(MARKER_UP) < pos("sleep 1"));
        assert!(pos("sleep 1") < pos("echo CPUS=$(grep -c ^processor /proc/cpuinfo)"));
        assert!(
            pos("CLOCKSOURCE=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)")
                < pos("echo extra")
        );
        assert!(pos("echo extra") < pos(MARKER_DONE));
        assert!(pos(MARKER_DONE) < pos("poweroff -f"));
        let plain = InitScript::new().render();
        assert!(!plain.contains(MARKER_UP) && plain.contains(MARKER_DONE));
    }

    #[test]
    fn initramfs_contents() {
        let dir = std::env::temp_dir().join(format!("ferrovisor-initramfs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bb = dir.join("busybox");
        std::fs::write(&bb, b"\x7fELF busybox").unwrap();
        let img = Initramfs::new(&bb).applets(&["xxd"]).file("etc/motd", 0o644, b"hello".to_vec());
        let out = dir.join("rd.cpio");
        img.write(&out).unwrap();
        let e = parse_newc(&std::fs::read(&out).unwrap()).unwrap();
        let get = |n: &str| e.iter().find(|e| e.name == n).unwrap_or_else(|| panic!("{n} missing"));
        assert_eq!(get("bin/busybox").data, b"\x7fELF busybox");
        for a in ["sh", "mount", "grep", "sleep", "cat", "poweroff", "xxd", "["] {
            assert_eq!(get(&format!("bin/{a}")).data, b"busybox");
        }
        assert_eq!(get("dev/console").rdev, (5, 1));
        assert_eq!(get("init").mode, S_IFREG | 0o755);
        assert!(String::from_utf8_lossy(&get("init").data).contains(MARKER_UP));
        assert_eq!(get("etc/motd").data, b"hello");
        for d in ["proc", "sys", "dev", "tmp"] {
            assert_eq!(get(d).kind(), S_IFDIR);
        }
        assert!(Initramfs::new(&dir.join("missing")).build().unwrap_err().contains("busybox"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
