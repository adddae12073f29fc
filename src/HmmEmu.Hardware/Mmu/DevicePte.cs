using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Translation;

namespace HmmEmu.Hardware.Mmu;

/// <summary>
/// One 64-bit device page-table entry, as drivers write it into table memory and the walker reads it back.
/// </summary>
/// <remarks>
/// <code>
///  63      52 51                         12 11    6  5   4   3   2   1   0
/// [ reserved |  address bits 51:12 (pfn)  | reserved | AP | L | A | W | R | V ]
/// </code>
/// V: valid (when clear, every other bit is ignored and free for software). R/W/A: read, write, atomic rights
/// (leaves only; must be zero in a table pointer). L: leaf (a page mapping) rather than a pointer to the next
/// table. AP: aperture, 0 = system RAM (physical address), 1 = device VRAM (offset). Reserved bits of a valid
/// entry must be zero; the walker answers <see cref="TranslationStatus.BadTable"/> otherwise.
/// </remarks>
/// <param name="Value">The raw entry.</param>
public readonly record struct DevicePte(ulong Value)
{
    /// <summary>V: the entry is valid.</summary>
    public const ulong ValidBit = 1UL << 0;

    /// <summary>R: a leaf grants reads.</summary>
    public const ulong ReadBit = 1UL << 1;

    /// <summary>W: a leaf grants writes.</summary>
    public const ulong WriteBit = 1UL << 2;

    /// <summary>A: a leaf grants atomics (which also need R and W).</summary>
    public const ulong AtomicBit = 1UL << 3;

    /// <summary>L: the entry maps a page (level 1, or a 2 MiB page at level 2) instead of pointing to a table.</summary>
    public const ulong LeafBit = 1UL << 4;

    /// <summary>AP: the address is in the device's VRAM rather than system RAM.</summary>
    public const ulong VramBit = 1UL << 5;

    /// <summary>The permission bits R, W and A.</summary>
    public const ulong PermissionMask = ReadBit | WriteBit | AtomicBit;

    /// <summary>Address bits 51:12: the 4 KiB-aligned address of the page or table.</summary>
    public const ulong AddressMask = 0x000F_FFFF_FFFF_F000UL;

    /// <summary>Bits that must be zero in a valid entry (11:6 and 63:52).</summary>
    public const ulong ReservedMask = ~(AddressMask | ValidBit | PermissionMask | LeafBit | VramBit);

    private const int PermissionShift = 1;

    /// <summary>The not-present entry (all zero).</summary>
    public static DevicePte Invalid => default;

    /// <summary>Whether V is set.</summary>
    public bool IsValid => (Value & ValidBit) != 0;

    /// <summary>Whether the entry is valid and maps a page (L set).</summary>
    public bool IsLeaf => (Value & (ValidBit | LeafBit)) == (ValidBit | LeafBit);

    /// <summary>Whether the entry is valid and points to a next-level table (L clear).</summary>
    public bool IsTable => (Value & (ValidBit | LeafBit)) == ValidBit;

    /// <summary>The rights encoded in R, W and A.</summary>
    public PtePermissions Permissions => (PtePermissions)((Value & PermissionMask) >> PermissionShift);

    /// <summary>Where <see cref="Address"/> lives.</summary>
    public Aperture Aperture => (Value & VramBit) != 0 ? Aperture.Vram : Aperture.System;

    /// <summary>The page or table address (bits 51:12, low 12 bits zero).</summary>
    public ulong Address => Value & AddressMask;

    /// <summary>The page frame number (<see cref="Address"/> &gt;&gt; 12).</summary>
    public ulong Pfn => Address >> DevicePageTable.PageShift;

    /// <summary>Whether any reserved bit is set (only meaningful when <see cref="IsValid"/>).</summary>
    public bool HasReservedBits => (Value & ReservedMask) != 0;

    /// <summary>
    /// Encodes a leaf mapping <paramref name="address"/> (4 KiB aligned; 2 MiB aligned if it is written at level 2) in
    /// <paramref name="aperture"/> with <paramref name="permissions"/>.
    /// </summary>
    public static DevicePte Leaf(Aperture aperture, ulong address, PtePermissions permissions)
    {
        CheckAddress(address, "page");
        if (((byte)permissions & ~(byte)PtePermissions.ReadWriteAtomic) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(permissions), permissions,
                "Leaf permissions are a combination of Read, Write and Atomic.");
        }
        return new DevicePte(ValidBit | LeafBit | ApertureBit(aperture) | address |
            ((ulong)permissions << PermissionShift));
    }

    /// <summary>Encodes a pointer to the next-level table at <paramref name="tableAddress"/> (4 KiB aligned) in <paramref name="aperture"/>.</summary>
    public static DevicePte Table(Aperture aperture, ulong tableAddress)
    {
        CheckAddress(tableAddress, "table");
        return new DevicePte(ValidBit | ApertureBit(aperture) | tableAddress);
    }

    /// <summary>This leaf with its rights replaced by <paramref name="permissions"/>.</summary>
    public DevicePte WithPermissions(PtePermissions permissions) =>
        new((Value & ~PermissionMask) | (((ulong)permissions << PermissionShift) & PermissionMask));

    /// <inheritdoc />
    public override string ToString()
    {
        if (!IsValid)
            return $"invalid (0x{Value:x})";
        string kind = IsLeaf ? "leaf" : "table";
        string ap = Aperture == Aperture.Vram ? "vram" : "sys";
        var p = Permissions;
        string rights = $"{((p & PtePermissions.Read) != 0 ? 'r' : '-')}{((p & PtePermissions.Write) != 0 ? 'w' : '-')}" +
            $"{((p & PtePermissions.Atomic) != 0 ? 'a' : '-')}";
        string reserved = HasReservedBits ? $" RESERVED 0x{Value & ReservedMask:x}" : "";
        return $"{kind} {ap} 0x{Address:x} {rights}{reserved}";
    }

    private static ulong ApertureBit(Aperture aperture) => aperture switch
    {
        Aperture.System => 0,
        Aperture.Vram => VramBit,
        _ => throw new ArgumentOutOfRangeException(nameof(aperture), aperture, "The aperture is System or Vram."),
    };

    private static void CheckAddress(ulong address, string what)
    {
        if ((address & ~AddressMask) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(address), $"0x{address:x}",
                $"A {what} address in a device PTE must be 4 KiB aligned and below 2^52.");
        }
    }
}
