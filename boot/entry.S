/* Ferrovisor boot entry: both boot protocols land here in 32-bit protected mode with
 * paging off, and leave for Rust (`hypervisor_entry`) in 64-bit long mode.
 *
 *   PVH (QEMU -kernel, Xen-style loaders): entry named by the XEN_ELFNOTE_PHYS32_ENTRY
 *       note below; ebx = physical address of struct hvm_start_info.
 *   multiboot2 (GRUB): ELF entry point; eax = 0x36d76289, ebx = physical address of
 *       the multiboot2 information structure.
 *
 * The stub builds throw-away page tables that identity-map the first 4 GiB with 2 MiB
 * pages; the Rust side replaces them with the hypervisor's real tables. Application
 * processors reuse these tables while they climb to long mode (see ap_trampoline.S), so
 * they must stay in place after boot. Intel syntax, as Rust's global_asm! expects.
 */

.set BOOT_PROTOCOL_PVH,        1
.set BOOT_PROTOCOL_MULTIBOOT2, 2
.set MB2_HEADER_MAGIC,         0xe85250d6
.set MB2_BOOTLOADER_MAGIC,     0x36d76289
.set XEN_ELFNOTE_PHYS32_ENTRY, 18
.set MSR_EFER,                 0xc0000080
.set EFER_LME,                 1 << 8
.set CR0_PE,                   1 << 0
.set CR0_PG,                   1 << 31
.set CR4_PAE,                  1 << 5
.set PTE_PRESENT_WRITABLE,     0x3
.set PDE_HUGE_PRESENT_WRITABLE, 0x83
.set COM1,                     0x3f8

/* ---- multiboot2 header --------------------------------------------------------- */
.section .multiboot2_header, "a"
.balign 8
mb2_header_start:
    .long MB2_HEADER_MAGIC
    .long 0                                   /* architecture: i386 protected mode */
    .long mb2_header_end - mb2_header_start
    .long 0x100000000 - (MB2_HEADER_MAGIC + (mb2_header_end - mb2_header_start))
    /* module alignment tag: ask for page-aligned modules */
    .balign 8
    .short 6
    .short 0
    .long 8
    /* end tag */
    .balign 8
    .short 0
    .short 0
    .long 8
mb2_header_end:

/* ---- PVH entry note -------------------------------------------------------------- */
.section .note.Xen, "a", @note
.balign 4
    .long 4                                   /* namesz: "Xen\0" */
    .long 4                                   /* descsz */
    .long XEN_ELFNOTE_PHYS32_ENTRY
    .asciz "Xen"
    .balign 4
    .long pvh_entry
    .balign 4

/* ---- 32-bit entry points ----------------------------------------------------------- */
.section .boot.text, "ax"
.code32

.global pvh_entry
pvh_entry:
    cli
    cld
    mov edi, BOOT_PROTOCOL_PVH
    mov esi, ebx
    jmp boot_common32

.global mb2_entry
mb2_entry:
    cli
    cld
    cmp eax, MB2_BOOTLOADER_MAGIC
    jne boot_bad_magic
    mov edi, BOOT_PROTOCOL_MULTIBOOT2
    mov esi, ebx
    jmp boot_common32

boot_common32:
    /* Zero .bss before anything lives there (the boot stack does). edi/esi carry the
     * boot protocol and info pointer, so use eax/ecx/edx only. */
    mov edx, edi
    mov edi, offset __bss_start
    mov ecx, offset __bss_end
    sub ecx, edi
    xor eax, eax
    rep stosb
    mov edi, edx

    mov esp, offset boot_stack_top

    /* Long mode is the one CPU feature we cannot report in Rust: check it here. */
    mov eax, 0x80000000
    cpuid
    cmp eax, 0x80000001
    jb boot_no_long_mode
    mov eax, 0x80000001
    cpuid
    test edx, 1 << 29
    jz boot_no_long_mode

    /* PML4[0] -> PDPT; PDPT[0..4] -> four page directories of 2 MiB pages. */
    mov eax, offset boot_pdpt
    or eax, PTE_PRESENT_WRITABLE
    mov dword ptr [boot_pml4], eax

    mov ecx, 0
.Lfill_pdpt:
    mov eax, ecx
    shl eax, 12
    add eax, offset boot_pd
    or eax, PTE_PRESENT_WRITABLE
    mov dword ptr [boot_pdpt + ecx * 8], eax
    inc ecx
    cmp ecx, 4
    jne .Lfill_pdpt

    mov ecx, 0
.Lfill_pd:
    mov eax, ecx
    shl eax, 21
    or eax, PDE_HUGE_PRESENT_WRITABLE
    mov dword ptr [boot_pd + ecx * 8], eax
    mov eax, ecx
    shr eax, 11                               /* high dword: (index * 2 MiB) >> 32 */
    mov dword ptr [boot_pd + ecx * 8 + 4], eax
    inc ecx
    cmp ecx, 2048
    jne .Lfill_pd

    mov eax, cr4
    or eax, CR4_PAE
    mov cr4, eax
    mov eax, offset boot_pml4
    mov cr3, eax
    mov ecx, MSR_EFER
    rdmsr
    or eax, EFER_LME
    wrmsr
    mov eax, cr0
    or eax, CR0_PE | CR0_PG
    mov cr0, eax

    lgdt [boot_gdt_pointer]
    /* ljmp 0x08:boot_long_mode (spelled out: LLVM's Intel syntax has no ptr16:32 form) */
    .byte 0xea
    .long boot_long_mode
    .short 0x08

boot_bad_magic:
    mov esi, offset msg_bad_magic
    jmp boot_die32
boot_no_long_mode:
    mov esi, offset msg_no_long_mode
boot_die32:
    /* Polled COM1 output: enough to tell the operator why we stopped. */
    mov dx, COM1 + 5
.Lwait_uart:
    in al, dx
    test al, 0x20
    jz .Lwait_uart
    lodsb
    test al, al
    jz .Lhalt
    mov dx, COM1
    out dx, al
    jmp boot_die32
.Lhalt:
    cli
    hlt
    jmp .Lhalt

.code64
boot_long_mode:
    mov ax, 0x10
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor eax, eax
    mov fs, ax
    mov gs, ax
    mov rsp, offset boot_stack_top
    mov edi, edi                              /* zero-extend: protocol */
    mov esi, esi                              /* zero-extend: boot info physical address */
    xor ebp, ebp
    call hypervisor_entry
    ud2

.section .rodata
.balign 8
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff                  /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff                  /* 0x10: data */
boot_gdt_end:
boot_gdt_pointer:
    .short boot_gdt_end - boot_gdt - 1
    .quad boot_gdt
msg_bad_magic:
    .asciz "ferrovisor: not started by a multiboot2 loader (bad magic in eax); halting\r\n"
msg_no_long_mode:
    .asciz "ferrovisor: this CPU has no 64-bit long mode; halting\r\n"

.section .bss
.balign 4096
.global boot_pml4
boot_pml4:
    .skip 4096
boot_pdpt:
    .skip 4096
boot_pd:
    .skip 4096 * 4
.balign 16
boot_stack:
    .skip 64 * 1024
boot_stack_top:
