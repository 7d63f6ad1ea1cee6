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
//!
//! [`InitScript::xenstore_test`] is the marker test followed by checks with Debian's xenstore
//! tools (`xenstore-utils`, dynamically linked: [`Initramfs::dynamic_program`] adds a program
//! with the shared libraries and the ELF interpreter it needs, found through its `DT_NEEDED`
//! entries in an unpacked Debian tree). Each check prints one line,
//!
//! ```text
//! XS check=<name> result=pass|fail value=<what it saw, newlines as commas>
//! ```
//!
//! for every name in [`XS_CHECKS`], in that order.

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

    /// The marker test, then the xenstore checks ([`XS_CHECKS`]) with Debian's xenstore tools
    /// through `/dev/xen/xenbus` (Linux's xenbus_dev_frontend). The peer domain whose keys must
    /// stay hidden is named on the kernel command line: `ferrovisor_xs_peer=<domid>`
    /// ([`XS_PEER_PARAM`]).
    pub fn xenstore_test() -> Self {
        let mut s = InitScript::marker_test();
        for line in XENSTORE_SCRIPT.lines().map(str::trim_end).filter(|l| !l.is_empty()) {
            s = s.command(line);
        }
        s
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

/// The kernel command-line parameter naming the peer domain for [`InitScript::xenstore_test`].
pub const XS_PEER_PARAM: &str = "ferrovisor_xs_peer";

/// The checks [`InitScript::xenstore_test`] prints, in order:
/// - `dev_xenbus`: `/dev/xen/xenbus` is a character device;
/// - `read_name`, `read_domid`: `xenstore-read name` / `domid` (relative paths: the domain's
///   own `/local/domain/N`); `value=` is what was read;
/// - `write_read`: `xenstore-write data/ferrovisor-xs value-<domid>` and read it back;
/// - `list_data`: `xenstore-list data` names it; `ls_data`: `xenstore-ls data` shows it with
///   its value;
/// - `watch`: `xenstore-watch -n 2 data/ferrovisor-watch` in the background sees the initial
///   event and the one a later `xenstore-write` fires;
/// - `chmod_grant`: `xenstore-chmod data/ferrovisor-ready n<me> r<peer>` lets the peer read
///   that one node (and only it);
/// - `peer_read_granted`: reading the peer's `data/ferrovisor-ready` succeeds (waits up to a
///   minute for the peer to write it: a barrier, so that both domains exist during the checks
///   that follow);
/// - `peer_read_denied`: `xenstore-read /local/domain/<peer>/name` fails;
/// - `peer_ls_denied`: `xenstore-ls /local/domain/<peer>/name` fails with `Permission denied`
///   (EACCES, where `xenstore-read` does not print the reason);
/// - `peer_write_denied`: `xenstore-write /local/domain/<peer>/data/intruder` fails;
/// - `peer_done`: the second barrier: the peer's `data/ferrovisor-done` becomes readable, or
///   its `data/ferrovisor-ready` goes away (it saw ours and powered off), within a minute.
pub const XS_CHECKS: &[&str] = &[
    "dev_xenbus",
    "read_name",
    "read_domid",
    "write_read",
    "list_data",
    "ls_data",
    "watch",
    "chmod_grant",
    "peer_read_granted",
    "peer_read_denied",
    "peer_ls_denied",
    "peer_write_denied",
    "peer_done",
];

/// The marker of the lines [`InitScript::xenstore_test`] prints.
pub const XS_MARKER: &str = "XS";

/// The shell text of the xenstore checks (one `xs_report` per entry of [`XS_CHECKS`]).
const XENSTORE_SCRIPT: &str = r#"
xs_report() { echo "XS check=$1 result=$2 value=$(printf '%s' "$3" | tr '\n' ',')"; }
xs_if() { if [ "$2" = 0 ]; then xs_report "$1" pass "$3"; else xs_report "$1" fail "$3"; fi; }
xs_wait() { t=$(($(date +%s) + 60)); while [ "$(date +%s)" -lt $t ]; do if eval "$1"; then return 0; fi; sleep 0.2; done; return 1; }
peer=$(sed -n 's/.*ferrovisor_xs_peer=\([0-9][0-9]*\).*/\1/p' /proc/cmdline)
echo "XS start peer=$peer"
if [ -c /dev/xen/xenbus ]; then xs_report dev_xenbus pass "$(ls -l /dev/xen/xenbus)"; else xs_report dev_xenbus fail "$(ls -l /dev/xen 2>&1)"; fi
v=$(xenstore-read name 2>&1); xs_if read_name $? "$v"
me=$(xenstore-read domid 2>&1); xs_if read_domid $? "$me"
xenstore-write data/ferrovisor-xs "value-$me" 2>/tmp/xs.err
v=$(xenstore-read data/ferrovisor-xs 2>&1); rc=$?
if [ "$rc" = 0 ] && [ "$v" = "value-$me" ]; then xs_report write_read pass "$v"; else xs_report write_read fail "$v $(cat /tmp/xs.err)"; fi
v=$(xenstore-list data 2>&1); rc=$?
if [ "$rc" = 0 ] && printf '%s\n' "$v" | grep -qx ferrovisor-xs; then xs_report list_data pass "$v"; else xs_report list_data fail "$v"; fi
v=$(xenstore-ls data 2>&1); rc=$?
if [ "$rc" = 0 ] && printf '%s\n' "$v" | grep -q '^ferrovisor-xs = "value-'; then xs_report ls_data pass "$v"; else xs_report ls_data fail "$v"; fi
xenstore-watch -n 2 data/ferrovisor-watch >/tmp/xs.watch 2>&1 &
wpid=$!
xs_wait '[ -s /tmp/xs.watch ]'
xenstore-write data/ferrovisor-watch fired 2>>/tmp/xs.watch
(sleep 20; kill $wpid 2>/dev/null) &
kpid=$!
wait $wpid; rc=$?
kill $kpid 2>/dev/null
v=$(cat /tmp/xs.watch)
if [ "$rc" = 0 ] && [ "$(printf '%s\n' "$v" | grep -cx data/ferrovisor-watch)" = 2 ]; then xs_report watch pass "$v"; else xs_report watch fail "rc=$rc $v"; fi
if [ -z "$peer" ]; then echo "XS no ferrovisor_xs_peer= on the kernel command line"; peer=none; fi
xenstore-write data/ferrovisor-ready 1 && v=$(xenstore-chmod data/ferrovisor-ready "n$me" "r$peer" 2>&1); xs_if chmod_grant $? "$v"
xs_wait "xenstore-read /local/domain/$peer/data/ferrovisor-ready >/dev/null 2>&1"
v=$(xenstore-read /local/domain/$peer/data/ferrovisor-ready 2>&1); xs_if peer_read_granted $? "$v"
v=$(xenstore-read /local/domain/$peer/name 2>&1); rc=$?
if [ "$rc" != 0 ]; then xs_report peer_read_denied pass "$v"; else xs_report peer_read_denied fail "read: $v"; fi
v=$(xenstore-ls /local/domain/$peer/name 2>&1); rc=$?
if [ "$rc" != 0 ] && printf '%s\n' "$v" | grep -q 'Permission denied'; then xs_report peer_ls_denied pass "$v"; else xs_report peer_ls_denied fail "rc=$rc $v"; fi
v=$(xenstore-write /local/domain/$peer/data/intruder x 2>&1); rc=$?
if [ "$rc" != 0 ]; then xs_report peer_write_denied pass "$v"; else xs_report peer_write_denied fail "written: $v"; fi
xenstore-write data/ferrovisor-done 1 && xenstore-chmod data/ferrovisor-done "n$me" "r$peer"
xs_wait "xenstore-read /local/domain/$peer/data/ferrovisor-done >/dev/null 2>&1 || ! xenstore-read /local/domain/$peer/data/ferrovisor-ready >/dev/null 2>&1"
xs_if peer_done $? "$(xenstore-read /local/domain/$peer/data/ferrovisor-done 2>&1)"
"#;

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
    symlinks: Vec<(String, String)>,
}

impl Initramfs {
    /// With `busybox` (a static busybox binary), [`DEFAULT_APPLETS`] and [`InitScript::marker_test`].
    pub fn new(busybox: &Path) -> Self {
        Initramfs {
            busybox: busybox.to_path_buf(),
            applets: DEFAULT_APPLETS.iter().map(|s| (*s).to_owned()).collect(),
            init: InitScript::marker_test(),
            files: Vec::new(),
            symlinks: Vec::new(),
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

    /// Adds a symbolic link `path` -> `target`.
    pub fn symlink(mut self, path: &str, target: &str) -> Self {
        self.symlinks.push((path.to_owned(), target.to_owned()));
        self
    }

    /// Adds the dynamically linked program at `program` (absolute, inside `root`, an unpacked
    /// tree of Debian packages) at the same path, with what it needs to run: its ELF
    /// interpreter and, transitively, every `DT_NEEDED` library, each found in `root`'s
    /// library directories ([`LIBRARY_DIRS`]) and put at the same path in the archive, with
    /// symbolic links resolved inside `root`. `links` are further names for the program
    /// (`/usr/bin/xenstore-read` for the multi-call `/usr/bin/xenstore`). Fails naming what
    /// is missing.
    pub fn dynamic_program(mut self, root: &Path, program: &str, links: &[&str]) -> Result<Self, String> {
        self.add_with_needs(root, program.to_owned(), resolve_in_root(root, program)?)?;
        for l in links {
            self.symlinks.push(((*l).to_owned(), program.to_owned()));
        }
        self.symlinks.sort();
        self.symlinks.dedup();
        Ok(self)
    }

    /// Adds the shared library `soname` from `root`'s [`LIBRARY_DIRS`] and what it needs, as
    /// [`Initramfs::dynamic_program`] does for a program's `DT_NEEDED` entries: for libraries
    /// loaded with `dlopen`, which no `DT_NEEDED` names.
    pub fn library(mut self, root: &Path, soname: &str) -> Result<Self, String> {
        let found = find_library(root, soname)?;
        let real = resolve_in_root(root, &found)?;
        self.add_with_needs(root, found, real)?;
        self.symlinks.sort();
        self.symlinks.dedup();
        Ok(self)
    }

    /// Adds the ELF `real` (wanted at `wanted`, a link to it if different), its interpreter
    /// and its `DT_NEEDED` libraries, transitively; each file once.
    fn add_with_needs(&mut self, root: &Path, wanted: String, real: String) -> Result<(), String> {
        let mut added: BTreeSet<String> = self.files.iter().map(|f| f.0.trim_start_matches('/').to_owned()).collect();
        // (the path the program or a library is wanted at, the file it resolves to)
        let mut queue = vec![(wanted, real)];
        while let Some((wanted, real)) = queue.pop() {
            if wanted != real {
                self.symlinks.push((wanted.clone(), real.clone()));
            }
            if !added.insert(real.trim_start_matches('/').to_owned()) {
                continue;
            }
            let host = root.join(real.trim_start_matches('/'));
            let bytes = std::fs::read(&host).map_err(|e| format!("reading {}: {e}", host.display()))?;
            let info = elf_dynamic(&bytes).map_err(|e| format!("{}: {e}", host.display()))?;
            self.files.push((real, 0o755, bytes));
            if let Some(interp) = info.interpreter {
                let real = resolve_in_root(root, &interp).map_err(|e| format!("{e} (interpreter of {wanted})"))?;
                queue.push((interp, real));
            }
            for soname in &info.needed {
                let found = find_library(root, soname).map_err(|e| format!("{e} (needed by {wanted})"))?;
                let real = resolve_in_root(root, &found)?;
                queue.push((found, real));
            }
        }
        Ok(())
    }

    /// Adds Debian's xenstore tools from `root` (the unpacked `xenstore-utils`,
    /// `libxenstore4`, `libxentoolcore1`, `libc6` and `libgcc-s1` packages): the multi-call
    /// `/usr/bin/xenstore` with its libraries, the links of [`XENSTORE_TOOLS`], and
    /// `libgcc_s.so.1`, which glibc loads with `dlopen` when libxenstore cancels its watch
    /// reader thread (`xs_close` after `xs_watch`: without it `xenstore-watch` aborts with
    /// "libgcc_s.so.1 must be installed for pthread_cancel to work").
    pub fn xenstore_tools(self, root: &Path) -> Result<Self, String> {
        let links: Vec<String> = XENSTORE_TOOLS.iter().map(|t| format!("/usr/bin/xenstore-{t}")).collect();
        let links: Vec<&str> = links.iter().map(String::as_str).collect();
        self.dynamic_program(root, XENSTORE_PROGRAM, &links)?.library(root, "libgcc_s.so.1")
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
        for (path, target) in &self.symlinks {
            w.symlink(path, target)?;
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

/// Debian's multi-call xenstore client (package `xenstore-utils`).
pub const XENSTORE_PROGRAM: &str = "/usr/bin/xenstore";
/// The modes of [`XENSTORE_PROGRAM`] linked as `/usr/bin/xenstore-<mode>` (what the package
/// ships as hard links).
pub const XENSTORE_TOOLS: &[&str] = &["read", "write", "rm", "exists", "list", "ls", "chmod", "watch"];

/// Where [`Initramfs::dynamic_program`] looks for libraries, inside the unpacked tree (the
/// multiarch directories of Debian's dynamic loader, then the classic ones).
pub const LIBRARY_DIRS: &[&str] =
    &["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"];

/// `path` (absolute, in the tree `root`) with symbolic links followed inside `root` (absolute
/// targets are taken relative to `root`); only the last component may be a link.
pub fn resolve_in_root(root: &Path, path: &str) -> Result<String, String> {
    let mut p = path.to_owned();
    for _ in 0..16 {
        let host = root.join(p.trim_start_matches('/'));
        let meta = std::fs::symlink_metadata(&host).map_err(|e| format!("{} in {}: {e}", p, root.display()))?;
        if !meta.file_type().is_symlink() {
            return Ok(p);
        }
        let target = std::fs::read_link(&host).map_err(|e| format!("reading link {}: {e}", host.display()))?;
        let target = target.to_str().ok_or_else(|| format!("{}: link target is not UTF-8", host.display()))?;
        p = if target.starts_with('/') {
            target.to_owned()
        } else {
            let dir = p.rsplit_once('/').map_or("", |(d, _)| d);
            let mut parts: Vec<&str> = dir.split('/').filter(|c| !c.is_empty()).collect();
            for c in target.split('/') {
                match c {
                    "" | "." => {}
                    ".." => {
                        parts.pop();
                    }
                    c => parts.push(c),
                }
            }
            format!("/{}", parts.join("/"))
        };
    }
    Err(format!("{path} in {}: too many levels of symbolic links", root.display()))
}

/// The path of library `soname` in the first of [`LIBRARY_DIRS`] of `root` that has it.
pub fn find_library(root: &Path, soname: &str) -> Result<String, String> {
    LIBRARY_DIRS
        .iter()
        .map(|d| format!("{d}/{soname}"))
        .find(|p| resolve_in_root(root, p).is_ok())
        .ok_or_else(|| format!("library {soname} is in none of {LIBRARY_DIRS:?} of {}", root.display()))
}

/// What a dynamically linked ELF needs to run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ElfDynamic {
    /// `PT_INTERP`: the dynamic loader, e.g. `/lib64/ld-linux-x86-64.so.2`.
    pub interpreter: Option<String>,
    /// The `DT_NEEDED` libraries, in order.
    pub needed: Vec<String>,
}

fn le(b: &[u8], off: usize, len: usize) -> Option<u64> {
    let s = b.get(off..off.checked_add(len)?)?;
    Some(s.iter().rev().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
}

fn c_string(b: &[u8], off: usize) -> Option<String> {
    let tail = b.get(off..)?;
    let end = tail.iter().position(|&c| c == 0)?;
    String::from_utf8(tail[..end].to_vec()).ok()
}

/// The interpreter and `DT_NEEDED` entries of an ELF64 little-endian file (through its
/// program headers: `PT_INTERP`, and `PT_DYNAMIC` whose `DT_STRTAB` address is mapped to a
/// file offset through the `PT_LOAD` segments). A static program has neither.
pub fn elf_dynamic(b: &[u8]) -> Result<ElfDynamic, String> {
    const PT_LOAD: u64 = 1;
    const PT_DYNAMIC: u64 = 2;
    const PT_INTERP: u64 = 3;
    const DT_NEEDED: u64 = 1;
    const DT_STRTAB: u64 = 5;
    if b.get(..4) != Some(b"\x7fELF") || b.get(4) != Some(&2) || b.get(5) != Some(&1) {
        return Err("not an ELF64 little-endian file".into());
    }
    let bad = || "truncated or malformed ELF".to_owned();
    let phoff = le(b, 0x20, 8).ok_or_else(bad)? as usize;
    let phentsize = le(b, 0x36, 2).ok_or_else(bad)? as usize;
    let phnum = le(b, 0x38, 2).ok_or_else(bad)? as usize;
    if phentsize < 56 {
        return Err(format!("bad e_phentsize {phentsize}"));
    }
    let mut loads = Vec::new();
    let mut dynamic = None;
    let mut out = ElfDynamic::default();
    for i in 0..phnum {
        let ph = phoff.checked_add(i.checked_mul(phentsize).ok_or_else(bad)?).ok_or_else(bad)?;
        let field = |o: usize| le(b, ph + o, 8).ok_or_else(bad);
        let (p_type, offset, vaddr, filesz) = (le(b, ph, 4).ok_or_else(bad)?, field(8)?, field(16)?, field(32)?);
        match p_type {
            PT_LOAD => loads.push((vaddr, offset, filesz)),
            PT_DYNAMIC => dynamic = Some((offset, filesz)),
            PT_INTERP => out.interpreter = Some(c_string(b, offset as usize).ok_or_else(bad)?),
            _ => {}
        }
    }
    let Some((dyn_off, dyn_size)) = dynamic else {
        return Ok(out);
    };
    let mut needed = Vec::new();
    let mut strtab = None;
    for i in 0..(dyn_size / 16) as usize {
        let e = dyn_off as usize + 16 * i;
        let (tag, val) = (le(b, e, 8).ok_or_else(bad)?, le(b, e + 8, 8).ok_or_else(bad)?);
        match tag {
            0 => break,
            DT_NEEDED => needed.push(val),
            DT_STRTAB => strtab = Some(val),
            _ => {}
        }
    }
    if needed.is_empty() {
        return Ok(out);
    }
    let strtab = strtab.ok_or("PT_DYNAMIC without DT_STRTAB")?;
    let str_off = loads
        .iter()
        .find(|(vaddr, _, filesz)| strtab >= *vaddr && strtab - vaddr < *filesz)
        .map(|(vaddr, offset, _)| strtab - vaddr + offset)
        .ok_or("DT_STRTAB lies in no PT_LOAD segment")?;
    for n in needed {
        out.needed.push(c_string(b, (str_off + n) as usize).ok_or_else(bad)?);
    }
    Ok(out)
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

    /// A minimal ELF64 with an optional `PT_INTERP` and `DT_NEEDED` entries.
    fn fake_elf(interp: Option<&str>, needed: &[&str]) -> Vec<u8> {
        const BASE: u64 = 0x40_0000;
        let mut b = vec![0u8; 0x400];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[16] = 3;
        b[18] = 62;
        b[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        b[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        b[0x38..0x3a].copy_from_slice(&3u16.to_le_bytes());
        let mut ph = |i: usize, ty: u32, off: u64, size: u64| {
            let p = 64 + 56 * i;
            b[p..p + 4].copy_from_slice(&ty.to_le_bytes());
            b[p + 8..p + 16].copy_from_slice(&off.to_le_bytes());
            b[p + 16..p + 24].copy_from_slice(&(BASE + off).to_le_bytes());
            b[p + 32..p + 40].copy_from_slice(&size.to_le_bytes());
        };
        ph(0, 1, 0, 0x400);
        ph(1, if interp.is_some() { 3 } else { 6 }, 0x180, 0x40);
        ph(2, 2, 0x200, 0x100);
        if let Some(i) = interp {
            b[0x180..0x180 + i.len()].copy_from_slice(i.as_bytes());
        }
        let mut strtab = vec![0u8];
        let mut dynamic = Vec::new();
        for n in needed {
            dynamic.push((1u64, strtab.len() as u64));
            strtab.extend_from_slice(n.as_bytes());
            strtab.push(0);
        }
        dynamic.push((5, BASE + 0x100));
        b[0x100..0x100 + strtab.len()].copy_from_slice(&strtab);
        for (i, (tag, val)) in dynamic.iter().enumerate() {
            b[0x200 + 16 * i..0x208 + 16 * i].copy_from_slice(&tag.to_le_bytes());
            b[0x208 + 16 * i..0x210 + 16 * i].copy_from_slice(&val.to_le_bytes());
        }
        b
    }

    #[test]
    fn elf_dynamic_entries() {
        let e = elf_dynamic(&fake_elf(Some("/lib64/ld.so"), &["libfoo.so.1", "libc.so.6"])).unwrap();
        assert_eq!(e.interpreter.as_deref(), Some("/lib64/ld.so"));
        assert_eq!(e.needed, ["libfoo.so.1", "libc.so.6"]);
        assert_eq!(elf_dynamic(&fake_elf(None, &[])).unwrap(), ElfDynamic::default());
        assert!(elf_dynamic(b"#!/bin/sh\n").is_err());
        assert!(elf_dynamic(&fake_elf(None, &["x"])[..0x210]).is_err());
        // This test binary is itself dynamically linked against glibc.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let e = elf_dynamic(&me).unwrap();
        assert!(e.needed.iter().any(|n| n == "libc.so.6"), "{e:?}");
        assert!(e.interpreter.is_some_and(|i| i.contains("ld-linux")));
    }

    /// A Debian-like tree: a program needing a library (through a relative soname link) that
    /// needs libc, which needs the loader; the interpreter path is an absolute link.
    #[test]
    fn dynamic_program_brings_its_libraries() {
        let root = std::env::temp_dir().join(format!("ferrovisor-dynroot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let mk = |p: &str, data: Vec<u8>| {
            let p = root.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        };
        mk("usr/bin/prog", fake_elf(Some("/lib64/ld.so"), &["libfoo.so.1", "libc.so.6"]));
        mk("usr/lib/x86_64-linux-gnu/libfoo.so.1.0", fake_elf(None, &["libc.so.6"]));
        mk("lib/x86_64-linux-gnu/libc.so.6", fake_elf(None, &["ld.so"]));
        mk("lib/x86_64-linux-gnu/ld.so", fake_elf(None, &[]));
        std::os::unix::fs::symlink("libfoo.so.1.0", root.join("usr/lib/x86_64-linux-gnu/libfoo.so.1")).unwrap();
        std::fs::create_dir_all(root.join("lib64")).unwrap();
        std::os::unix::fs::symlink("/lib/x86_64-linux-gnu/ld.so", root.join("lib64/ld.so")).unwrap();
        assert_eq!(resolve_in_root(&root, "/lib64/ld.so").unwrap(), "/lib/x86_64-linux-gnu/ld.so");
        assert_eq!(find_library(&root, "libfoo.so.1").unwrap(), "/usr/lib/x86_64-linux-gnu/libfoo.so.1");

        let bb = root.join("busybox");
        std::fs::write(&bb, b"bb").unwrap();
        let img = Initramfs::new(&bb).dynamic_program(&root, "/usr/bin/prog", &["/usr/bin/prog-alias"]).unwrap();
        let e = parse_newc(&img.build().unwrap()).unwrap();
        let get = |n: &str| e.iter().find(|e| e.name == n).unwrap_or_else(|| panic!("{n} missing: {e:?}"));
        assert_eq!(get("usr/bin/prog").kind(), S_IFREG);
        assert_eq!(get("usr/bin/prog").mode & 0o777, 0o755);
        assert_eq!(get("usr/bin/prog-alias").data, b"/usr/bin/prog");
        assert_eq!(get("usr/lib/x86_64-linux-gnu/libfoo.so.1.0").kind(), S_IFREG);
        assert_eq!(get("usr/lib/x86_64-linux-gnu/libfoo.so.1").data, b"/usr/lib/x86_64-linux-gnu/libfoo.so.1.0");
        assert_eq!(get("lib/x86_64-linux-gnu/libc.so.6").kind(), S_IFREG);
        assert_eq!(get("lib/x86_64-linux-gnu/ld.so").kind(), S_IFREG);
        assert_eq!(get("lib64/ld.so").data, b"/lib/x86_64-linux-gnu/ld.so");
        // Each file once.
        let names: Vec<&str> = e.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names.len(), names.iter().collect::<BTreeSet<_>>().len());

        // A dlopen()ed library on its own: it and what it needs, nothing twice.
        mk("lib/x86_64-linux-gnu/libgcc_s.so.1", fake_elf(None, &["libc.so.6"]));
        let img = img.library(&root, "libgcc_s.so.1").unwrap();
        let e = parse_newc(&img.build().unwrap()).unwrap();
        assert!(e.iter().any(|e| e.name == "lib/x86_64-linux-gnu/libgcc_s.so.1" && e.kind() == S_IFREG));
        assert!(Initramfs::new(&bb).library(&root, "libnone.so.9").unwrap_err().contains("libnone.so.9"));

        std::fs::remove_file(root.join("lib/x86_64-linux-gnu/libc.so.6")).unwrap();
        let err = Initramfs::new(&bb).dynamic_program(&root, "/usr/bin/prog", &[]).unwrap_err();
        assert!(err.contains("libc.so.6") && err.contains("needed by"), "{err}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn xenstore_script_reports_every_check() {
        let s = InitScript::xenstore_test().render();
        assert!(s.contains(XS_PEER_PARAM));
        let pos = |needle: &str| s.find(needle).unwrap_or_else(|| panic!("{needle:?} missing:\n{s}"));
        assert!(pos(MARKER_UP) < pos("XS start"));
        assert!(pos("XS start") < pos(MARKER_DONE));
        let mut last = 0;
        for c in XS_CHECKS {
            // Each check is reported (by xs_report or xs_if) after the previous one.
            let at = s.find(&format!("xs_report {c} ")).or_else(|| s.find(&format!("xs_if {c} "))).unwrap();
            assert!(at > last, "{c} out of order");
            last = at;
        }
        for t in ["read", "write", "list", "ls", "watch", "chmod"] {
            assert!(s.contains(&format!("xenstore-{t} ")), "xenstore-{t}");
            assert!(XENSTORE_TOOLS.contains(&t));
        }
        assert_eq!(InitScript::marker_test().render().matches("XS").count(), 0);
    }
}
