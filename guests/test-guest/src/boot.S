/* Test guest entry (PVH). The loader enters guest_pvh_entry, named by the Xen PVH note
 * below, in 32-bit protected mode with paging off and ebx = physical address of
 * struct hvm_start_info. The stub zeroes .bss, identity-maps the first 4 GiB with 2 MiB
 * pages, enters long mode and calls guest_main(start_info_paddr) in Rust.
 *
 * LLVM Intel syntax: no numeric local labels (use .Lname), `offset sym` for a symbol's
 * address (a bare symbol is a memory operand), one symbol per memory operand, and the far
 * jump into 64-bit code spelled out as bytes.
 */

.set XEN_ELFNOTE_PHYS32_ENTRY,  18
.set MSR_EFER,                  0xc0000080
.set EFER_LME,                  1 << 8
.set CR0_PE,                    1 << 0
.set CR0_PG,                    1 << 31
.set CR4_PAE,                   1 << 5
.set PTE_PRESENT_WRITABLE,      0x3
.set PDE_HUGE_PRESENT_WRITABLE, 0x83
.set GDT_CODE64,                0x08
.set GDT_DATA,                  0x10

/* ---- PVH entry note ---------------------------------------------------------------- */
.section .note.Xen, "a", @note
.balign 4
    .long 4                                   /* namesz: "Xen\0" */
    .long 4                                   /* descsz: a 32-bit physical address */
    .long XEN_ELFNOTE_PHYS32_ENTRY
    .asciz "Xen"
    .balign 4
    .long guest_pvh_entry
    .balign 4

/* ---- 32-bit entry ------------------------------------------------------------------- */
.section .boot.text, "ax"
.code32

.global guest_pvh_entry
guest_pvh_entry:
    cli
    cld
    mov esi, ebx                              /* keep the start_info address in esi */

    /* Zero .bss (page tables and the stack live there). */
    mov edi, offset __bss_start
    mov ecx, offset __bss_end
    sub ecx, edi
    xor eax, eax
    rep stosb

    mov esp, offset guest_stack_top

    /* PML4[0] -> PDPT; PDPT[0..4] -> four page directories of 2 MiB pages (4 GiB). */
    mov eax, offset guest_pdpt
    or eax, PTE_PRESENT_WRITABLE
    mov dword ptr [guest_pml4], eax

    xor ecx, ecx
.Lfill_pdpt:
    mov eax, ecx
    shl eax, 12
    add eax, offset guest_pd
    or eax, PTE_PRESENT_WRITABLE
    mov dword ptr [guest_pdpt + ecx * 8], eax
    inc ecx
    cmp ecx, 4
    jne .Lfill_pdpt

    xor ecx, ecx
.Lfill_pd:
    mov eax, ecx
    shl eax, 21
    or eax, PDE_HUGE_PRESENT_WRITABLE
    mov dword ptr [guest_pd + ecx * 8], eax
    mov eax, ecx
    shr eax, 11                               /* high dword: (index * 2 MiB) >> 32 */
    mov dword ptr [guest_pd + ecx * 8 + 4], eax
    inc ecx
    cmp ecx, 2048
    jne .Lfill_pd

    mov eax, cr4
    or eax, CR4_PAE
    mov cr4, eax
    mov eax, offset guest_pml4
    mov cr3, eax
    mov ecx, MSR_EFER
    rdmsr
    or eax, EFER_LME
    wrmsr
    mov eax, cr0
    or eax, CR0_PE | CR0_PG
    mov cr0, eax

    lgdt [guest_gdt_pointer]
    /* ljmp GDT_CODE64:guest_long_mode (LLVM's Intel syntax has no ptr16:32 form) */
    .byte 0xea
    .long guest_long_mode
    .short GDT_CODE64

.code64
guest_long_mode:
    mov ax, GDT_DATA
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor eax, eax
    mov fs, ax
    mov gs, ax
    mov rsp, offset guest_stack_top
    mov edi, esi                              /* argument: start_info address, zero-extended */
    xor ebp, ebp
    call guest_main
.Lstuck:
    cli
    hlt
    jmp .Lstuck

.section .rodata
.balign 8
guest_gdt:
    .quad 0
    .quad 0x00af9a000000ffff                  /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff                  /* 0x10: data */
guest_gdt_end:
guest_gdt_pointer:
    .short guest_gdt_end - guest_gdt - 1
    .quad guest_gdt

.section .bss
.balign 4096
.global guest_pml4
guest_pml4:
    .skip 4096
.global guest_pdpt
guest_pdpt:
    .skip 4096
guest_pd:
    .skip 4096 * 4
.balign 16
guest_stack:
    .skip 64 * 1024
guest_stack_top:
