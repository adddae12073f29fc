namespace HmmEmu.Kernel.Vm;

/// <summary>Memory protection requested by mmap and mprotect (PROT_*).</summary>
[Flags]
public enum Prot
{
    /// <summary>PROT_NONE: no access; any CPU access raises SIGSEGV.</summary>
    None = 0,

    /// <summary>PROT_READ.</summary>
    Read = 1,

    /// <summary>PROT_WRITE (implies read on this architecture, as on x86).</summary>
    Write = 2,

    /// <summary>PROT_EXEC (recorded, not enforced: the simulation does not execute code).</summary>
    Exec = 4,

    /// <summary>PROT_READ | PROT_WRITE.</summary>
    ReadWrite = Read | Write,
}
