//! `cargo xtask linux`: fetches Debian's stock kernel and busybox and builds the default
//! initramfs, cached under `target/linux/`.
//!
//! 1. `apt-get update` (as root), then the current dependency of the `linux-image-amd64`
//!    metapackage (`apt-cache depends`, e.g. `linux-image-6.1.0-56-amd64`) and
//!    `busybox-static` are downloaded with `apt-get download` — nothing is installed.
//! 2. From the kernel package only `boot/` and the Xen block/net frontend modules are
//!    unpacked (`dpkg-deb --fsys-tarfile | tar -x`; the whole package is 400 MB of modules);
//!    busybox with `dpkg-deb -x`.
//! 3. The ELF vmlinux is taken out of the bzImage `vmlinuz` (its xz payload, decompressed
//!    with `xz`) and checked for the PVH entry note ([`qemu_tests::linux::extract_vmlinux`]).
//! 4. `linux.txt` records what was fetched; its presence makes later runs reuse the cache
//!    without touching the network (`--refresh` fetches again).
//! 5. Debian's xenstore tools for the xenstore tests: [`XENSTORE_PACKAGES`] (`xenstore-utils`,
//!    the libraries its binary needs beyond glibc, glibc itself, `libc6`, so the initramfs is
//!    self-contained, and `libgcc-s1`, which glibc loads at run time for `pthread_cancel`) are downloaded the same way and unpacked together into
//!    `xenstore/` with `dpkg-deb -x`; `xenstore.txt` records them (its own manifest, so a
//!    kernel cache from before is kept). Every `DT_NEEDED` library of the tools must resolve
//!    inside that tree ([`qemu_tests::initramfs::Initramfs::xenstore_tools`]), or the fetch fails.
//!
//! The default initramfs (`initramfs-default.cpio`, [`qemu_tests::initramfs`]) is rebuilt on
//! every call: it is small and follows the code.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use qemu_tests::initramfs::Initramfs;

use crate::prereq;
use crate::util::{describe, run_step, step, target_dir};

/// The metapackage whose dependency is the real kernel package.
pub const KERNEL_METAPACKAGE: &str = "linux-image-amd64";
/// The static busybox package.
pub const BUSYBOX_PACKAGE: &str = "busybox-static";
/// The cache manifest's file name.
const MANIFEST: &str = "linux.txt";
/// Debian's xenstore client and what it needs to run: `xenstore-utils` (the multi-call
/// `/usr/bin/xenstore`: DT_NEEDED libxenstore.so.4, libc.so.6), `libxenstore4`
/// (libxentoolcore.so.1, libc.so.6), `libxentoolcore1` (libc.so.6) and `libc6` (libc.so.6 and
/// the loader `ld-linux-x86-64.so.2`), and `libgcc-s1` (`libgcc_s.so.1`, which glibc's
/// `pthread_cancel` loads with `dlopen`: libxenstore cancels its watch thread on close, so
/// `xenstore-watch` aborts without it).
pub const XENSTORE_PACKAGES: &[&str] = &["xenstore-utils", "libxenstore4", "libxentoolcore1", "libc6", "libgcc-s1"];
/// The xenstore tools' manifest.
const XENSTORE_MANIFEST: &str = "xenstore.txt";
/// Where the xenstore packages are unpacked, under the cache directory.
const XENSTORE_DIR: &str = "xenstore";

/// A fetched guest.
#[derive(Debug, Clone)]
pub struct LinuxGuest {
    /// The ELF vmlinux.
    pub vmlinux: PathBuf,
    /// Debian's static busybox.
    pub busybox: PathBuf,
    /// The default initramfs.
    pub initrd: PathBuf,
    /// The unpacked [`XENSTORE_PACKAGES`] (`usr/bin/xenstore`, its libraries, glibc).
    pub xenstore_root: PathBuf,
    /// The xenstore packages and their versions (`xenstore-utils=4.17.7+13-...`, ...).
    pub xenstore_packages: String,
    /// The kernel package (`linux-image-6.1.0-56-amd64`).
    pub package: String,
    /// Its Debian version (`6.1.192-2`).
    pub package_version: String,
    /// The version string in the kernel image.
    pub version: String,
    /// The PVH entry point.
    pub pvh_entry: u64,
}

/// The cache directory.
pub fn cache_dir() -> PathBuf {
    target_dir().join("linux")
}

fn manifest_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
}

/// The cached guest, if complete.
fn cached(dir: &Path) -> Option<LinuxGuest> {
    let text = fs::read_to_string(dir.join(MANIFEST)).ok()?;
    let get = |k: &str| manifest_value(&text, k).map(str::to_owned);
    let guest = LinuxGuest {
        vmlinux: dir.join(get("vmlinux")?),
        busybox: dir.join(get("busybox")?),
        initrd: dir.join("initramfs-default.cpio"),
        xenstore_root: PathBuf::new(),
        xenstore_packages: String::new(),
        package: get("package")?,
        package_version: get("package_version")?,
        version: get("version")?,
        pvh_entry: qemu_tests::selftest::parse_u64(&get("pvh_entry")?)?,
    };
    (guest.vmlinux.is_file() && guest.busybox.is_file()).then_some(guest)
}

/// The kernel package `linux-image-amd64` currently depends on, from `apt-cache depends` output.
pub fn kernel_package_from_depends(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let dep = l.trim().trim_start_matches('|').strip_prefix("Depends:")?.trim();
        (dep.starts_with("linux-image-") && !dep.starts_with('<')).then(|| dep.to_owned())
    })
}

fn output(c: &mut Command) -> Result<String, String> {
    step(&describe(c));
    let out = c.stderr(Stdio::inherit()).output().map_err(|e| format!("cannot run `{}`: {e}", describe(c)))?;
    if !out.status.success() {
        return Err(format!("`{}` failed ({})", describe(c), out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("Uid:")).and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn io_err<'a>(what: &'a str, p: &'a Path) -> impl FnOnce(std::io::Error) -> String + 'a {
    move |e| format!("{what} {}: {e}", p.display())
}

fn fresh(dir: &Path) -> Result<(), String> {
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(io_err("removing", dir))?;
    }
    fs::create_dir_all(dir).map_err(io_err("creating", dir))
}

/// The one `.deb` of `package` in `dir`.
fn deb_of(dir: &Path, package: &str) -> Result<PathBuf, String> {
    let prefix = format!("{package}_");
    fs::read_dir(dir)
        .map_err(io_err("reading", dir))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb")))
        .ok_or_else(|| format!("apt-get download left no {prefix}*.deb in {}", dir.display()))
}

/// Unpacks `boot/` and the Xen frontend modules of the kernel package into `dest`.
fn unpack_kernel(deb: &Path, dest: &Path) -> Result<(), String> {
    let mut dpkg = Command::new("dpkg-deb");
    dpkg.arg("--fsys-tarfile").arg(deb).stdout(Stdio::piped());
    let mut tar = Command::new("tar");
    tar.arg("-x").arg("-C").arg(dest).args([
        "--wildcards",
        "./boot/*",
        "./lib/modules/*/kernel/drivers/block/xen-blkfront.ko",
        "./lib/modules/*/kernel/drivers/net/xen-netfront.ko",
    ]);
    step(&format!("{} | {}", describe(&dpkg), describe(&tar)));
    let mut d = dpkg.spawn().map_err(|e| format!("cannot run dpkg-deb: {e}"))?;
    let pipe = d.stdout.take().expect("piped");
    let t = tar.stdin(pipe).status().map_err(|e| format!("cannot run tar: {e}"))?;
    let ds = d.wait().map_err(|e| format!("dpkg-deb: {e}"))?;
    if !ds.success() || !t.success() {
        return Err(format!("unpacking {} failed (dpkg-deb {ds}, tar {t})", deb.display()));
    }
    Ok(())
}

/// `apt-get update` as root, once per xtask run.
fn apt_update_once() -> Result<(), String> {
    static DONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if DONE.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return Ok(());
    }
    if is_root() {
        let mut c = Command::new("apt-get");
        c.arg("update").env("DEBIAN_FRONTEND", "noninteractive");
        run_step(&mut c)
    } else {
        eprintln!("note: not root, so no `apt-get update`; the package lists may be old");
        Ok(())
    }
}

/// `apt-get download PACKAGES` into the fresh directory `debs`.
fn apt_download(debs: &Path, packages: &[&str]) -> Result<(), String> {
    fresh(debs)?;
    let mut c = Command::new("apt-get");
    c.arg("download").args(packages).current_dir(debs);
    if is_root() {
        // Files go to a directory the _apt sandbox user cannot write; say it is fine.
        c.args(["-o", "APT::Sandbox::User=root"]);
    }
    run_step(&mut c).map_err(|e| {
        let hint = if is_root() {
            String::new()
        } else {
            format!(
                "; not root, so the package lists were not updated: run `sudo apt-get update` (or as root \
                 `apt-get update && apt-get download {}` in {}), then again",
                packages.join(" "),
                debs.display()
            )
        };
        format!("{e}: cannot download {} (is Debian's package mirror reachable?){hint}", packages.join(" "))
    })
}

/// The cached xenstore tools, if complete: every one of [`XENSTORE_PACKAGES`] recorded (a
/// cache from before a package was added is fetched again) and the binary there.
fn cached_xenstore(dir: &Path) -> Option<(PathBuf, String)> {
    let text = fs::read_to_string(dir.join(XENSTORE_MANIFEST)).ok()?;
    let root = dir.join(manifest_value(&text, "root")?);
    let packages = manifest_value(&text, "packages")?.to_owned();
    let recorded: Vec<&str> = packages.split(',').filter_map(|p| p.split_once('=').map(|(n, _)| n)).collect();
    let complete = XENSTORE_PACKAGES.iter().all(|p| recorded.contains(p));
    (complete && root.join("usr/bin/xenstore").is_file()).then_some((root, packages))
}

/// Downloads [`XENSTORE_PACKAGES`] and unpacks them into `xenstore/`.
fn download_xenstore(dir: &Path) -> Result<(PathBuf, String), String> {
    apt_update_once()?;
    let debs = dir.join("xenstore-debs");
    apt_download(&debs, XENSTORE_PACKAGES)?;
    let root = dir.join(XENSTORE_DIR);
    fresh(&root)?;
    let mut versions = Vec::new();
    for package in XENSTORE_PACKAGES {
        let deb = deb_of(&debs, package)?;
        let version = output(Command::new("dpkg-deb").arg("-f").arg(&deb).arg("Version"))?.trim().to_owned();
        versions.push(format!("{package}={version}"));
        let mut c = Command::new("dpkg-deb");
        c.arg("-x").arg(&deb).arg(&root);
        run_step(&mut c)?;
    }
    if !root.join("usr/bin/xenstore").is_file() {
        return Err(format!("xenstore-utils has no usr/bin/xenstore (in {})", root.display()));
    }
    fs::remove_dir_all(&debs).map_err(io_err("removing", &debs))?;
    let packages = versions.join(",");
    let manifest = format!(
        "# Debian's xenstore tools for the test initramfs; delete this file (or use --refresh) to fetch again\n\
         packages={packages}\nroot={XENSTORE_DIR}\n"
    );
    fs::write(dir.join(XENSTORE_MANIFEST), manifest).map_err(io_err("writing", &dir.join(XENSTORE_MANIFEST)))?;
    cached_xenstore(dir).ok_or_else(|| format!("{} was written but does not read back", XENSTORE_MANIFEST))
}

fn download(dir: &Path) -> Result<LinuxGuest, String> {
    prereq::ensure_packages(&[prereq::LINUX_FETCH])?;
    apt_update_once()?;
    let depends = output(Command::new("apt-cache").args(["depends", KERNEL_METAPACKAGE]))?;
    let package = kernel_package_from_depends(&depends).ok_or_else(|| {
        format!("`apt-cache depends {KERNEL_METAPACKAGE}` names no linux-image-* package (are Debian's package lists there? `apt-get update`)")
    })?;

    let debs = dir.join("debs");
    apt_download(&debs, &[&package, BUSYBOX_PACKAGE])?;
    let kernel_deb = deb_of(&debs, &package)?;
    let busybox_deb = deb_of(&debs, BUSYBOX_PACKAGE)?;
    let package_version = output(Command::new("dpkg-deb").arg("-f").arg(&kernel_deb).arg("Version"))?.trim().to_owned();

    let kernel_dir = dir.join("kernel");
    fresh(&kernel_dir)?;
    unpack_kernel(&kernel_deb, &kernel_dir)?;
    let busybox_dir = dir.join("busybox-static");
    fresh(&busybox_dir)?;
    let mut c = Command::new("dpkg-deb");
    c.arg("-x").arg(&busybox_deb).arg(&busybox_dir);
    run_step(&mut c)?;
    let busybox = busybox_dir.join("bin/busybox");
    if !busybox.is_file() {
        return Err(format!("{} has no bin/busybox", busybox_deb.display()));
    }

    let boot = kernel_dir.join("boot");
    let vmlinuz = fs::read_dir(&boot)
        .map_err(io_err("reading", &boot))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("vmlinuz-")))
        .ok_or_else(|| format!("{} has no boot/vmlinuz-*", kernel_deb.display()))?;
    let release =
        vmlinuz.file_name().and_then(|n| n.to_str()).unwrap_or_default().trim_start_matches("vmlinuz-").to_owned();
    step(&format!("extracting the ELF vmlinux from {} (xz payload)", vmlinuz.display()));
    let bz = fs::read(&vmlinuz).map_err(io_err("reading", &vmlinuz))?;
    let version = qemu_tests::linux::bzimage_version(&bz).unwrap_or_else(|| release.clone());
    let (elf, pvh_entry) =
        qemu_tests::linux::extract_vmlinux(&bz).map_err(|e| format!("{}: {e}", vmlinuz.display()))?;
    let vmlinux_name = format!("vmlinux-{release}");
    let vmlinux = dir.join(&vmlinux_name);
    let tmp = dir.join("vmlinux.tmp");
    fs::write(&tmp, &elf).map_err(io_err("writing", &tmp))?;
    fs::rename(&tmp, &vmlinux).map_err(io_err("renaming to", &vmlinux))?;
    fs::remove_dir_all(&debs).map_err(io_err("removing", &debs))?;

    let manifest = format!(
        "# what `cargo xtask linux` fetched; delete this file (or use --refresh) to fetch again\n\
         package={package}\npackage_version={package_version}\nversion={version}\nrelease={release}\n\
         pvh_entry={pvh_entry:#x}\nvmlinux={vmlinux_name}\nbusybox=busybox-static/bin/busybox\n"
    );
    fs::write(dir.join(MANIFEST), manifest).map_err(io_err("writing", &dir.join(MANIFEST)))?;
    cached(dir).ok_or_else(|| format!("{} was written but does not read back", dir.join(MANIFEST).display()))
}

/// The guest: from the cache, or downloaded (`refresh`: always downloaded). The default
/// initramfs is rebuilt either way.
pub fn fetch(refresh: bool) -> Result<LinuxGuest, String> {
    let dir = cache_dir();
    fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
    let mut guest = match cached(&dir) {
        Some(g) if !refresh => {
            step(&format!("Debian Linux {} ({}) from the cache {}", g.package, g.package_version, dir.display()));
            g
        }
        _ => download(&dir)?,
    };
    (guest.xenstore_root, guest.xenstore_packages) = match cached_xenstore(&dir) {
        Some(x) if !refresh => {
            step(&format!("Debian's xenstore tools ({}) from the cache {}", x.1, x.0.display()));
            x
        }
        _ => download_xenstore(&dir)?,
    };
    // The tools and every library they need are there (the xenstore tests' initramfs).
    Initramfs::new(&guest.busybox)
        .xenstore_tools(&guest.xenstore_root)
        .and_then(|i| i.build())
        .map_err(|e| format!("Debian's xenstore tools in {}: {e}", guest.xenstore_root.display()))?;
    Initramfs::new(&guest.busybox).write(&guest.initrd)?;
    Ok(guest)
}

/// `cargo xtask linux [--refresh]`.
pub fn command(args: &[String]) -> Result<ExitCode, String> {
    let opts = crate::cli::parse(args, &[], &["refresh"])?;
    let g = fetch(opts.flag("refresh"))?;
    println!("kernel:    {} {} ({})", g.package, g.package_version, g.version);
    println!("PVH entry: {:#x}", g.pvh_entry);
    println!("vmlinux:   {}", g.vmlinux.display());
    println!("initrd:    {}", g.initrd.display());
    println!("busybox:   {}", g.busybox.display());
    println!("xenstore:  {} ({})", g.xenstore_root.display(), g.xenstore_packages);
    println!();
    println!("Boot it under Ferrovisor (2 vCPUs, 512 MiB; the domain needs 256 MiB or more):");
    println!(
        "    cargo xtask run --memory 2G --smp 2 --exit-when-idle \\\n        --domain 'linux,initrd=default,memory=512,vcpus=2,cmdline=console=hvc0 earlyprintk=xen'"
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depends_parsing() {
        let text = "linux-image-amd64\n  Depends: linux-image-6.1.0-56-amd64\n";
        assert_eq!(kernel_package_from_depends(text).as_deref(), Some("linux-image-6.1.0-56-amd64"));
        let text = "linux-image-amd64\n |Depends: linux-image-6.1.0-57-amd64\n  Depends: linux-image-6.1.0-56-amd64\n";
        assert_eq!(kernel_package_from_depends(text).as_deref(), Some("linux-image-6.1.0-57-amd64"));
        assert_eq!(kernel_package_from_depends("linux-image-amd64\n  Depends: <virtual>\n"), None);
        assert_eq!(kernel_package_from_depends(""), None);
    }

    #[test]
    fn xenstore_packages_cover_the_tools() {
        // The tools' DT_NEEDED chain: xenstore -> libxenstore.so.4 -> libxentoolcore.so.1, all
        // -> libc.so.6 (+ the loader), from these packages.
        for p in ["xenstore-utils", "libxenstore4", "libxentoolcore1", "libc6", "libgcc-s1"] {
            assert!(XENSTORE_PACKAGES.contains(&p), "{p}");
        }
        let dir = std::env::temp_dir().join(format!("xtask-xs-manifest-{}", std::process::id()));
        fs::create_dir_all(dir.join("xs/usr/bin")).unwrap();
        let all = XENSTORE_PACKAGES.iter().map(|p| format!("{p}=1")).collect::<Vec<_>>().join(",");
        fs::write(dir.join(XENSTORE_MANIFEST), format!("# c\npackages={all}\nroot=xs\n")).unwrap();
        assert_eq!(cached_xenstore(&dir), None); // no binary yet
        fs::write(dir.join("xs/usr/bin/xenstore"), b"x").unwrap();
        assert_eq!(cached_xenstore(&dir), Some((dir.join("xs"), all)));
        // A manifest from before a package was added: fetched again.
        fs::write(dir.join(XENSTORE_MANIFEST), "packages=xenstore-utils=1,libc6=2\nroot=xs\n").unwrap();
        assert_eq!(cached_xenstore(&dir), None);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn manifest_values() {
        let text = "# c\npackage=linux-image-x\nvmlinux=vmlinux-x\n";
        assert_eq!(manifest_value(text, "package"), Some("linux-image-x"));
        assert_eq!(manifest_value(text, "vmlinux"), Some("vmlinux-x"));
        assert_eq!(manifest_value(text, "pack"), None);
    }
}
