//! Building a BIOS + UEFI bootable GRUB ISO with `grub-mkrescue`
//! (Debian packages `grub-common`, `grub-pc-bin`, `grub-efi-amd64-bin`,
//! `xorriso`, `mtools`).
//!
//! The ISO holds `boot/ferrovisor` (the image), one `boot/<name>` per module file
//! and `boot/grub/grub.cfg`, which boots at once with GRUB on the serial port:
//! `multiboot2 /boot/ferrovisor <cmdline>`, `module2 /boot/<name> <cmdline>`
//! per module, `boot`.
//!
//! GRUB passes the words after the file name to the kernel/module joined by
//! single spaces (it does not pass the file name itself). Command lines are
//! therefore limited to words of printable characters without quotes or
//! backslashes (GRUB would escape those); anything else is rejected here.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The GRUB platform directories grub-mkrescue needs for a hybrid ISO.
pub const GRUB_PLATFORMS: [(&str, &str); 2] =
    [("/usr/lib/grub/i386-pc", "grub-pc-bin"), ("/usr/lib/grub/x86_64-efi", "grub-efi-amd64-bin")];

/// Name of the hypervisor image inside the ISO.
pub const IMAGE_NAME: &str = "ferrovisor";

/// One boot module: a file and its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Module {
    /// The file to load.
    pub file: PathBuf,
    /// Its command line (may be empty).
    pub cmdline: String,
}

impl Module {
    /// A module from a file and a command line.
    pub fn new(file: impl Into<PathBuf>, cmdline: impl Into<String>) -> Self {
        Module { file: file.into(), cmdline: cmdline.into() }
    }
}

/// Checks that `cmdline` reaches the kernel unchanged through GRUB.
pub fn check_cmdline(cmdline: &str) -> Result<(), String> {
    if let Some(c) = cmdline.chars().find(|&c| !(c == ' ' || c.is_ascii_graphic()) || matches!(c, '"' | '\'' | '\\')) {
        return Err(format!(
            "command line {cmdline:?} contains {c:?}: GRUB command lines here are words of printable \
             ASCII without quotes or backslashes"
        ));
    }
    if cmdline.contains("  ") || cmdline.starts_with(' ') || cmdline.ends_with(' ') {
        return Err(format!(
            "command line {cmdline:?} has leading, trailing or repeated spaces, which GRUB would not keep"
        ));
    }
    Ok(())
}

/// One word of a grub.cfg command, single-quoted if it has characters that
/// GRUB's script syntax would interpret (`$`, `;`, `{`, `#`, ...).
fn grub_word(word: &str) -> String {
    let plain = word.chars().all(|c| c.is_ascii_alphanumeric() || "-_.,:/=+@%^~".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{word}'")
    }
}

fn grub_words(cmdline: &str) -> String {
    cmdline.split(' ').filter(|w| !w.is_empty()).map(|w| format!(" {}", grub_word(w))).collect()
}

/// The text of `boot/grub/grub.cfg` for `cmdline` and modules given as
/// (name inside `/boot`, command line).
pub fn grub_cfg(cmdline: &str, modules: &[(String, String)]) -> Result<String, String> {
    check_cmdline(cmdline)?;
    let mut cfg = String::from(
        "set timeout=0\n\
         set default=0\n\
         serial --unit=0 --speed=115200\n\
         terminal_input serial console\n\
         terminal_output serial console\n\
         \n\
         menuentry \"Ferrovisor\" {\n",
    );
    cfg.push_str(&format!("    multiboot2 /boot/{IMAGE_NAME}{}\n", grub_words(cmdline)));
    for (name, mcmd) in modules {
        check_cmdline(mcmd)?;
        cfg.push_str(&format!("    module2 /boot/{}{}\n", grub_word(name), grub_words(mcmd)));
    }
    cfg.push_str("    boot\n}\n");
    Ok(cfg)
}

/// The names the modules get inside `/boot`: their file names, which must be
/// plain and not clash with the image or `grub`. Modules naming the same file
/// (the same path) share one copy in the ISO — GRUB loads it once per
/// `module2` line — so a domain kernel can boot many domains; different
/// files with the same name are an error.
pub fn module_names(modules: &[Module]) -> Result<Vec<String>, String> {
    let mut seen: BTreeMap<String, &Path> = BTreeMap::new();
    modules
        .iter()
        .map(|m| {
            let name = m
                .file
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| format!("module {} has no usable file name", m.file.display()))?
                .to_owned();
            if !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                return Err(format!("module file name {name:?}: use only letters, digits, '-', '_', '.'"));
            }
            if name == IMAGE_NAME || name == "grub" {
                return Err(format!("module file name {name:?} is reserved"));
            }
            match seen.get(&name) {
                Some(first) if *first != m.file.as_path() => Err(format!(
                    "module file name {name:?} is used by two different files ({} and {})",
                    first.display(),
                    m.file.display()
                )),
                _ => {
                    seen.insert(name.clone(), &m.file);
                    Ok(name)
                }
            }
        })
        .collect()
}

/// Builds a GRUB ISO at `iso` booting `image` with `cmdline` and `modules`
/// (each a file and its command line); returns the ISO's path.
///
/// The staging directory is `<iso>.staging/`, rebuilt on every call.
pub fn build_iso(image: &Path, cmdline: &str, modules: &[Module], iso: &Path) -> Result<PathBuf, String> {
    if !image.is_file() {
        return Err(format!("hypervisor image {} does not exist", image.display()));
    }
    for (dir, package) in GRUB_PLATFORMS {
        if !Path::new(dir).is_dir() {
            return Err(format!("{dir} is missing: install the Debian package `{package}`"));
        }
    }
    let names = module_names(modules)?;
    let entries: Vec<(String, String)> = names.iter().cloned().zip(modules.iter().map(|m| m.cmdline.clone())).collect();
    let cfg = grub_cfg(cmdline, &entries)?;

    let io = |what: &str, p: &Path, e: std::io::Error| format!("{what} {}: {e}", p.display());
    let mut staging = iso.as_os_str().to_owned();
    staging.push(".staging");
    let staging = PathBuf::from(staging);
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(|e| io("removing", &staging, e))?;
    }
    let grub_dir = staging.join("boot/grub");
    fs::create_dir_all(&grub_dir).map_err(|e| io("creating", &grub_dir, e))?;
    let boot = staging.join("boot");
    fs::copy(image, boot.join(IMAGE_NAME)).map_err(|e| io("copying", image, e))?;
    let mut copied = BTreeSet::new();
    for (m, name) in modules.iter().zip(&names) {
        if copied.insert(name.as_str()) {
            fs::copy(&m.file, boot.join(name)).map_err(|e| io("copying module", &m.file, e))?;
        }
    }
    fs::write(grub_dir.join("grub.cfg"), cfg).map_err(|e| io("writing", &grub_dir, e))?;
    if let Some(parent) = iso.parent() {
        fs::create_dir_all(parent).map_err(|e| io("creating", parent, e))?;
    }
    let _ = fs::remove_file(iso);

    let out = Command::new("grub-mkrescue")
        .arg("-o")
        .arg(iso)
        .arg(&staging)
        .output()
        .map_err(|e| format!("cannot run grub-mkrescue (Debian package `grub-common`): {e}"))?;
    if !out.status.success() || !iso.is_file() {
        return Err(format!(
            "grub-mkrescue failed ({}); it needs xorriso and mtools too:\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(iso.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cfg_layout() {
        let cfg = grub_cfg(
            "selftest=boot loglvl=info marker=abc",
            &[("mod0.bin".into(), "first alpha=1".into()), ("mod1.bin".into(), String::new())],
        )
        .unwrap();
        let expected = "set timeout=0\nset default=0\nserial --unit=0 --speed=115200\n\
                        terminal_input serial console\nterminal_output serial console\n\n\
                        menuentry \"Ferrovisor\" {\n\
                        \x20   multiboot2 /boot/ferrovisor selftest=boot loglvl=info marker=abc\n\
                        \x20   module2 /boot/mod0.bin first alpha=1\n\
                        \x20   module2 /boot/mod1.bin\n\
                        \x20   boot\n}\n";
        assert_eq!(cfg, expected);
    }

    #[test]
    fn special_words_are_quoted() {
        let cfg = grub_cfg("a=$x b;c {d} #e", &[]).unwrap();
        assert!(cfg.contains("multiboot2 /boot/ferrovisor 'a=$x' 'b;c' '{d}' '#e'\n"));
    }

    #[test]
    fn rejected_cmdlines() {
        assert!(grub_cfg("a\"b", &[]).is_err());
        assert!(grub_cfg("a'b", &[]).is_err());
        assert!(grub_cfg("a\\b", &[]).is_err());
        assert!(grub_cfg("a\nb", &[]).is_err());
        assert!(grub_cfg("a  b", &[]).is_err());
        assert!(grub_cfg(" a", &[]).is_err());
        assert!(grub_cfg("", &[]).is_ok());
        assert!(grub_cfg("ok", &[("m".into(), "bad\"".into())]).is_err());
    }

    #[test]
    fn names() {
        let ok = module_names(&[Module::new("/a/mod0.bin", ""), Module::new("/b/mod1.bin", "x")]).unwrap();
        assert_eq!(ok, ["mod0.bin", "mod1.bin"]);
        assert!(module_names(&[Module::new("/a/m", ""), Module::new("/b/m", "")]).is_err());
        // The same file twice (two domains of one kernel) shares one name.
        let shared = module_names(&[Module::new("/a/k", "domain"), Module::new("/a/k", "domain name=b")]).unwrap();
        assert_eq!(shared, ["k", "k"]);
        assert!(module_names(&[Module::new("/a/ferrovisor", "")]).is_err());
        assert!(module_names(&[Module::new("/a/has space", "")]).is_err());
    }
}
