/* dom0 agent entry (PVH, physically relocatable).
 *
 * The loader enters agent_pvh_entry in 32-bit protected mode, paging off, ebx = physical
 * address of struct hvm_start_info, at its link address plus a displacement it chose
 * (a multiple of 2 MiB, announced by the PHYS32_RELOC note below). The stub works out the
 * displacement, builds page tables in .boot.bss that identity-map the first 4 GiB (physical
 * memory: start info, modules, mapped guest pages) and map the kernel's virtual range
 * (KERNEL_VIRT_OFFSET + link address, 1 GiB) onto where it really is, enters long mode and
 * calls agent_main(start_info_paddr, displacement) on the high kernel stack.
 *
 * LLVM Intel syntax: `offset sym` is a symbol's link address; every address the 32-bit
 * code uses is that plus the displacement in ebp.
 */

.set XEN_ELFNOTE_PHYS32_ENTRY,  18
.set XEN_ELFNOTE_PHYS32_RELOC,  19
.set MSR_EFER,                  0xc0000080
.set EFER_LME,                  1 << 8
.set EFER_NXE,                  1 << 11
.set CR0_PE,                    1 << 0
.set CR0_WP,                    1 << 16
.set CR0_PG,                    1 << 31
.set CR4_PAE,                   1 << 5
.set PTE_PRESENT_WRITABLE,      0x3
.set PDE_HUGE_PRESENT_WRITABLE, 0x83
.set GDT_CODE64,                0x08
.set GDT_DATA,                  0x10
.set RELOC_ALIGN,               0x200000
.set RELOC_MAX,                 0xffffffff

/* ---- PVH notes --------------------------------------------------------------------- */
.section .note.Xen, "a", @note
.balign 4
    .long 4                                   /* namesz: "Xen\0" */
    .long 4                                   /* descsz: a 32-bit physical address */
    .long XEN_ELFNOTE_PHYS32_ENTRY
    .asciz "Xen"
    .balign 4
    .long agent_pvh_entry
    .balign 4
    .long 4
    .long 12                                  /* descsz: align, min, max */
    .long XEN_ELFNOTE_PHYS32_RELOC
    .asciz "Xen"
    .balign 4
    .long RELOC_ALIGN
    .long __agent_phys_start
    .long RELOC_MAX
    .balign 4

/* ---- 32-bit entry (linked at its physical address) --------------------------------- */
.section .boot.text, "ax"
.code32

.global agent_pvh_entry
agent_pvh_entry:
    cli
    cld
    mov esi, ebx                              /* start_info address */
    /* No stack yet: borrow start_info's first dword for the call's return address. */
    mov edx, dword ptr [ebx]
    lea esp, [ebx + 4]
    call .Lhere
.Lhere:
    pop ebp
    mov dword ptr [ebx], edx
    sub ebp, offset .Lhere                    /* ebp = displacement */
    lea esp, [ebp + boot_stack_top]

    /* Zero the tables (the RAM is scrubbed, but a loader need not be a hypervisor). */
    lea edi, [ebp + boot_tables]
    mov ecx, offset boot_tables_end
    sub ecx, offset boot_tables
    xor eax, eax
    rep stosb

    /* PML4[0] -> low PDPT: four page directories of 2 MiB pages, the first 4 GiB 1:1. */
    lea eax, [ebp + boot_pdpt_low]
    or eax, PTE_PRESENT_WRITABLE
    mov dword ptr [ebp + boot_pml4], eax
    xor ecx, ecx
.Lfill_pdpt_low:
    mov eax, ecx
    shl eax, 12
    lea eax, [ebp + eax + boot_pd_low]
    or eax, PTE_PRESENT_WRITABLE
    lea edx, [ebp + boot_pdpt_low]
    mov dword ptr [edx + ecx * 8], eax
    inc ecx
    cmp ecx, 4
    jne .Lfill_pdpt_low
    xor ecx, ecx
    lea edx, [ebp + boot_pd_low]
.Lfill_pd_low:
    mov eax, ecx
    shl eax, 21
    or eax, PDE_HUGE_PRESENT_WRITABLE
    mov dword ptr [edx + ecx * 8], eax
    mov eax, ecx
    shr eax, 11                               /* high dword: (index * 2 MiB) >> 32 */
    mov dword ptr [edx + ecx * 8 + 4], eax
    inc ecx
    cmp ecx, 2048
    jne .Lfill_pd_low

    /* PML4[511] -> high PDPT; its entry 510 (VA 0xffffffff80000000) -> a page directory
     * mapping 1 GiB at physical 0 + displacement. */
    lea eax, [ebp + boot_pdpt_high]
    or eax, PTE_PRESENT_WRITABLE
    mov dword ptr [ebp + boot_pml4 + 511 * 8], eax
    lea eax, [ebp + boot_pd_high]
    or eax, PTE_PRESENT_WRITABLE
    mov dword ptr [ebp + boot_pdpt_high + 510 * 8], eax
    xor ecx, ecx
    lea edx, [ebp + boot_pd_high]
.Lfill_pd_high:
    mov eax, ecx
    shl eax, 21
    add eax, ebp
    or eax, PDE_HUGE_PRESENT_WRITABLE
    mov dword ptr [edx + ecx * 8], eax
    inc ecx
    cmp ecx, 512
    jne .Lfill_pd_high

    mov eax, cr4
    or eax, CR4_PAE
    mov cr4, eax
    lea eax, [ebp + boot_pml4]
    mov cr3, eax
    mov ecx, MSR_EFER
    rdmsr
    or eax, EFER_LME
    wrmsr
    mov eax, cr0
    or eax, CR0_PE | CR0_PG | CR0_WP
    mov cr0, eax

    /* The GDT pointer holds a physical address: patch in the displacement. */
    lea eax, [ebp + boot_gdt]
    mov dword ptr [ebp + boot_gdt_pointer + 2], eax
    lgdt [ebp + boot_gdt_pointer]
    /* Far return into 64-bit code at its physical address. */
    push GDT_CODE64
    lea eax, [ebp + .Llong_mode]
    push eax
    retf

.code64
.Llong_mode:
    mov ax, GDT_DATA
    mov ds, ax
    mov es, ax
    mov ss, ax
    xor eax, eax
    mov fs, ax
    mov gs, ax
    movabs rax, offset agent_high_entry
    jmp rax

.section .boot.data, "aw"
.balign 8
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff                  /* 0x08: 64-bit code */
    .quad 0x00cf92000000ffff                  /* 0x10: data */
boot_gdt_end:
.balign 8
boot_gdt_pointer:
    .short boot_gdt_end - boot_gdt - 1
    .quad 0                                   /* base: patched at entry */

.section .boot.bss, "aw", @nobits
.balign 4096
boot_tables:
.global boot_pml4
boot_pml4:
    .skip 4096
boot_pdpt_low:
    .skip 4096
boot_pd_low:
    .skip 4096 * 4
boot_pdpt_high:
    .skip 4096
boot_pd_high:
    .skip 4096
boot_tables_end:
    .skip 256
boot_stack_top:

/* ---- 64-bit, at the kernel's virtual addresses -------------------------------------- */
.section .text.agent_entry, "ax"
agent_high_entry:
    lea rsp, [rip + agent_stack_top]
    mov edi, esi                              /* start_info address */
    mov esi, ebp                              /* displacement */
    xor ebp, ebp
    call agent_main
.Lstuck:
    cli
    hlt
    jmp .Lstuck

.section .bss
.balign 16
agent_stack:
    .skip 256 * 1024
agent_stack_top:
