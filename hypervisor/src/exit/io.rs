//! Port I/O: the debug console at 0xE9, enough of COM1 for a guest to print, and nothing
//! else: other ports read as all ones and ignore writes, like an empty ISA bus.

use super::Action;
use crate::vcpu::{Exec, Vcpu};
use crate::virt::IoAccess;
use alloc::format;

const DEBUG_CONSOLE: u16 = 0xe9;
const COM1: u16 = 0x3f8;

/// COM1 register offsets and bits (a 16550).
const DATA: u16 = 0;
const INTERRUPT_ID: u16 = 2;
const LINE_CONTROL: u16 = 3;
const LINE_STATUS: u16 = 5;
const LCR_DLAB: u8 = 0x80;
/// Transmitter holding register empty + transmitter empty: always ready.
const LSR_READY: u8 = 0x60;
const IIR_NO_INTERRUPT: u8 = 0x01;

pub fn emulate(vcpu: &Vcpu, exec: &mut Exec, access: IoAccess) -> Action {
    if access.string || access.size == 0 {
        vcpu.domain.crash(
            "io",
            format!("string or malformed I/O on port {:#x} is not emulated (RIP {:#x})", access.port, exec.regs.rip),
        );
        return Action::Stop;
    }
    let mask = match access.size {
        1 => 0xff,
        2 => 0xffff,
        _ => 0xffff_ffff,
    };
    if access.write {
        let value = exec.regs.rax & mask;
        write(vcpu, access.port, value as u8);
    } else {
        let value = u64::from(read(vcpu, access.port)) & mask;
        exec.regs.rax = if access.size == 4 { value } else { (exec.regs.rax & !mask) | value };
    }
    exec.regs.rip = access.next_rip;
    Action::Continue
}

fn write(vcpu: &Vcpu, port: u16, byte: u8) {
    match port {
        DEBUG_CONSOLE => vcpu.domain.console_write(&[byte]),
        _ if (COM1..COM1 + 8).contains(&port) => {
            let mut serial = vcpu.domain.serial.lock();
            match port - COM1 {
                DATA if serial.line_control & LCR_DLAB == 0 => {
                    drop(serial);
                    vcpu.domain.console_write(&[byte]);
                }
                LINE_CONTROL => serial.line_control = byte,
                _ => {}
            }
        }
        _ => {}
    }
}

fn read(vcpu: &Vcpu, port: u16) -> u32 {
    match port {
        // QEMU and Bochs answer 0xE9 on their debug port; guests probe for it that way.
        DEBUG_CONSOLE => u32::from(DEBUG_CONSOLE as u8),
        _ if (COM1..COM1 + 8).contains(&port) => u32::from(match port - COM1 {
            INTERRUPT_ID => IIR_NO_INTERRUPT,
            LINE_CONTROL => vcpu.domain.serial.lock().line_control,
            LINE_STATUS => LSR_READY,
            _ => 0,
        }),
        _ => u32::MAX,
    }
}
