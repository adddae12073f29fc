namespace HmmEmu.Mirror;

/// <summary>The per-page byte codes of a snapshot (HMM_DMIRROR_PROT_*).</summary>
public static class SnapshotProt
{
    /// <summary>HMM_DMIRROR_PROT_ERROR: no VMA, or the VMA cannot be mirrored.</summary>
    public const byte Error = 0xFF;

    /// <summary>HMM_DMIRROR_PROT_NONE: not present.</summary>
    public const byte None = 0x00;

    /// <summary>HMM_DMIRROR_PROT_READ.</summary>
    public const byte Read = 0x01;

    /// <summary>HMM_DMIRROR_PROT_WRITE.</summary>
    public const byte Write = 0x02;

    /// <summary>HMM_DMIRROR_PROT_PMD: mapped by a 2 MiB entry.</summary>
    public const byte Pmd = 0x04;

    /// <summary>HMM_DMIRROR_PROT_PUD: mapped by a 1 GiB entry.</summary>
    public const byte Pud = 0x08;

    /// <summary>HMM_DMIRROR_PROT_ZERO: the shared zero page.</summary>
    public const byte Zero = 0x10;

    /// <summary>HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL: in this device's private memory.</summary>
    public const byte DevPrivateLocal = 0x20;

    /// <summary>HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE: in another device's private memory.</summary>
    public const byte DevPrivateRemote = 0x30;

    /// <summary>HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL: in this device's coherent memory.</summary>
    public const byte DevCoherentLocal = 0x40;

    /// <summary>HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE: in another device's coherent memory.</summary>
    public const byte DevCoherentRemote = 0x50;
}
