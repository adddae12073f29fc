using System.Runtime.CompilerServices;
using HmmEmu.Hardware.Translation;

namespace HmmEmu.Hardware.Mmu;

/// <summary>The PTE bits each kind of access needs: R for a read, W for a write, R, W and A for an atomic.</summary>
internal static class Rights
{
    /// <summary>The bits a leaf must have for <paramref name="access"/>; throws for an empty or unknown access.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Required(Access access)
    {
        uint a = (uint)access;
        if (a - 1 >= 7)
            ThrowBadAccess(access);
        // Access Read/Write/Atomic (1, 2, 4) sit one bit below the PTE's R/W/A (2, 4, 8); an atomic also needs R and W.
        return ((ulong)a << 1) | ((ulong)(a >> 2) * (DevicePte.ReadBit | DevicePte.WriteBit));
    }

    private static void ThrowBadAccess(Access access) =>
        throw new ArgumentOutOfRangeException(nameof(access), access,
            "An access is a non-empty combination of Read, Write and Atomic.");
}
