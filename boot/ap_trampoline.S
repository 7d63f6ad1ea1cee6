/* Application-processor trampoline. The BSP copies the bytes between
 * ap_trampoline_start and ap_trampoline_end to a free page below 1 MiB, fills in the
 * parameter block at its end, and sends INIT-SIPI-SIPI with that page's number as the
 * vector. The AP starts here in 16-bit real mode with CS = page << 8, IP = 0.
 *
 * The code is position-independent: it finds its own physical base from CS (kept in ebx)
 * and forms every absolute address from it, because the page it runs from is chosen at
 * boot (a boot loader may have put a module anywhere in low memory).
 *
 * Path: real mode -> 32-bit protected mode -> long mode on the boot stub's identity page
 * tables (they map this page) -> ap_long_mode_entry in the image, which switches to the
 * hypervisor's page tables and stack and calls the Rust AP entry. The parameter block is
 * read before that switch: the hypervisor's page tables do not map this page.
 */

.set MSR_EFER,           0xc0000080
.set EFER_LME,           1 << 8
.set CR4_PAE,            1 << 5
/* Offsets inside the trampoline (LLVM's Intel syntax takes one symbol per operand). */
.set AP_GDT_OFFSET,         ap_gdt - ap_trampoline_start
.set AP_GDT_POINTER_OFFSET, ap_gdt_pointer - ap_trampoline_start
.set AP_PM32_OFFSET,        ap_protected_mode - ap_trampoline_start
.set AP_LM64_OFFSET,        ap_long_mode - ap_trampoline_start
.set AP_PARAMS_OFFSET,      ap_params - ap_trampoline_start

.section .rodata.ap_trampoline, "a"
.balign 16
.global ap_trampoline_start
ap_trampoline_start:
.code16
    cli
    cld
    mov ax, cs
    mov ds, ax
    xor ebx, ebx
    mov bx, ax
    shl ebx, 4                                /* ebx = physical base of this page */
    /* Point the GDT descriptor at this copy's GDT, then load it. */
    mov eax, ebx
    add eax, offset AP_GDT_OFFSET
    mov dword ptr [AP_GDT_POINTER_OFFSET + 2], eax
    lgdt [AP_GDT_POINTER_OFFSET]
    mov eax, cr0
    or eax, 1
    mov cr0, eax
    /* Far return to 0x08:(base + ap_protected_mode), with 32-bit operands. */
    mov eax, 0x08
    push eax
    mov eax, ebx
    add eax, offset AP_PM32_OFFSET
    push eax
    .byte 0x66, 0xcb                          /* retfd */

.code32
ap_protected_mode:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    mov eax, cr4
    or eax, CR4_PAE
    mov cr4, eax
    mov eax, dword ptr [ebx + AP_PARAMS_OFFSET]          /* boot_cr3 */
    mov cr3, eax
    mov ecx, MSR_EFER
    rdmsr
    or eax, EFER_LME
    or eax, dword ptr [ebx + AP_PARAMS_OFFSET + 8]      /* efer_bits */
    wrmsr
    mov eax, cr0
    or eax, 0x80000001                        /* PG | PE */
    mov cr0, eax
    /* Far return to 0x18:(base + ap_long_mode): the 64-bit code segment. A stack is
     * needed for that: use the end of this page. */
    lea esp, [ebx + 4096]
    push 0x18
    lea eax, [ebx + AP_LM64_OFFSET]
    push eax
    retf

.code64
ap_long_mode:
    lea edi, [rbx + AP_PARAMS_OFFSET]
    movabs rax, offset ap_long_mode_entry
    jmp rax

.balign 8
ap_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff                  /* 0x08: 32-bit code */
    .quad 0x00cf92000000ffff                  /* 0x10: data */
    .quad 0x00af9a000000ffff                  /* 0x18: 64-bit code */
ap_gdt_end:
.balign 8
ap_gdt_pointer:
    .short ap_gdt_end - ap_gdt - 1
    .long 0                                   /* base: filled in at run time */

/* Parameter block: layout mirrored by `TrampolineParams` in smp.rs. */
.balign 8
.global ap_params
ap_params:
    .quad 0             /* boot_cr3: identity tables below 4 GiB */
    .quad 0             /* efer_bits: extra EFER bits (NXE) */
    .quad 0             /* cr3: the hypervisor's page tables */
    .quad 0             /* stack_top */
    .quad 0             /* entry: extern "C" fn(cpu_index: u64) -> ! */
    .quad 0             /* cpu_index */
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
