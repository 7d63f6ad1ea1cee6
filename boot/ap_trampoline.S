/* Application-processor trampoline. The BSP copies the bytes between
 * ap_trampoline_start and ap_trampoline_end to physical AP_TRAMPOLINE_BASE (a page below
 * 1 MiB) and fills in the parameter block at its end, then sends INIT-SIPI-SIPI with the
 * vector AP_TRAMPOLINE_BASE >> 12. The AP starts here in 16-bit real mode with
 * CS = AP_TRAMPOLINE_BASE >> 4, IP = 0.
 *
 * Path: real mode -> 32-bit protected mode -> long mode on the boot stub's identity page
 * tables (they map this page) -> ap_long_mode_entry in the image, which switches to the
 * hypervisor's page tables and stack and calls the Rust AP entry. The parameter block is
 * read before the switch: the real page tables do not map this page.
 */

.set AP_TRAMPOLINE_BASE, 0x8000
.set MSR_EFER,           0xc0000080
.set EFER_LME,           1 << 8
.set CR4_PAE,            1 << 5
/* Addresses inside the installed copy (LLVM's Intel syntax takes one symbol per operand). */
.set AP_GDT_POINTER_OFFSET, ap_gdt_pointer - ap_trampoline_start
.set AP_PARAMS,             AP_TRAMPOLINE_BASE + (ap_params - ap_trampoline_start)
.set AP_PARAMS_BOOT_CR3,    AP_PARAMS
.set AP_PARAMS_EFER_BITS,   AP_PARAMS + 8

.section .rodata.ap_trampoline, "a"
.balign 16
.global ap_trampoline_start
ap_trampoline_start:
.code16
    cli
    cld
    mov ax, cs
    mov ds, ax
    lgdt [AP_GDT_POINTER_OFFSET]
    mov eax, cr0
    or eax, 1
    mov cr0, eax
    /* ljmp 0x08:ap_protected_mode with a 32-bit offset */
    .byte 0x66, 0xea
    .long AP_TRAMPOLINE_BASE + (ap_protected_mode - ap_trampoline_start)
    .short 0x08

.code32
ap_protected_mode:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov eax, cr4
    or eax, CR4_PAE
    mov cr4, eax
    mov eax, dword ptr [AP_PARAMS_BOOT_CR3]
    mov cr3, eax
    mov ecx, MSR_EFER
    rdmsr
    or eax, EFER_LME
    or eax, dword ptr [AP_PARAMS_EFER_BITS]
    wrmsr
    mov eax, cr0
    or eax, 0x80000001                        /* PG | PE */
    mov cr0, eax
    /* ljmp 0x18:ap_long_mode */
    .byte 0xea
    .long AP_TRAMPOLINE_BASE + (ap_long_mode - ap_trampoline_start)
    .short 0x18

.code64
ap_long_mode:
    mov edi, offset AP_PARAMS
    movabs rax, offset ap_long_mode_entry
    jmp rax

.balign 8
ap_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff                  /* 0x08: 32-bit code */
    .quad 0x00cf92000000ffff                  /* 0x10: data */
    .quad 0x00af9a000000ffff                  /* 0x18: 64-bit code */
ap_gdt_end:
ap_gdt_pointer:
    .short ap_gdt_end - ap_gdt - 1
    .long AP_TRAMPOLINE_BASE + (ap_gdt - ap_trampoline_start)

/* Parameter block: layout mirrored by `TrampolineParams` in smp.rs. */
.balign 8
.global ap_params
ap_params:
ap_params_boot_cr3:   .quad 0             /* identity tables below 4 GiB */
ap_params_efer_bits:  .quad 0             /* extra EFER bits (NXE) */
ap_params_cr3:        .quad 0             /* the hypervisor's page tables */
ap_params_stack_top:  .quad 0
ap_params_entry:      .quad 0             /* extern "C" fn(cpu_index: u64) -> ! */
ap_params_cpu_index:  .quad 0
.global ap_trampoline_end
ap_trampoline_end:

/* Runs from the image, still on the identity tables; rdi = parameter block. */
.section .text
.code64
ap_long_mode_entry:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov rax, [rdi + 16]
    mov rsp, [rdi + 24]
    mov rcx, [rdi + 32]
    mov rbx, [rdi + 40]
    mov cr3, rax
    mov rdi, rbx
    xor ebp, ebp
    push 0                                    /* fake return address: keeps the ABI's alignment */
    jmp rcx
