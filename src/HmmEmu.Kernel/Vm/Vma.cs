using HmmEmu.Kernel.Fs;
using HmmEmu.Kernel.Memory;

namespace HmmEmu.Kernel.Vm;

/// <summary>
/// A virtual memory area (vm_area_struct): a page-aligned range of one address space with one protection and one
/// backing object. VMAs are created, split and removed only under the mmap write lock; readers hold it for read.
/// </summary>
public sealed class Vma
{
    internal Vma(Mm mm, ulong start, ulong end, VmFlags flags, SimFile? file, ulong pgoff)
    {
        Mm = mm;
        Start = start;
        End = end;
        Flags = flags;
        File = file;
        PgOff = pgoff;
    }

    /// <summary>The address space this area belongs to.</summary>
    public Mm Mm { get; }

    /// <summary>vm_start: first address (page aligned).</summary>
    public ulong Start { get; internal set; }

    /// <summary>vm_end: one past the last address (page aligned).</summary>
    public ulong End { get; internal set; }

    /// <summary>vm_flags.</summary>
    public VmFlags Flags { get; internal set; }

    /// <summary>The backing file, or null for private anonymous memory.</summary>
    public SimFile? File { get; }

    /// <summary>vm_pgoff: the file page that <see cref="Start"/> maps.</summary>
    public ulong PgOff { get; internal set; }

    /// <summary>Whether anonymous pages were ever installed (anon_vma): fork must then copy the page table.</summary>
    public bool HasAnonPages { get; internal set; }

    /// <summary>Length in bytes.</summary>
    public ulong Length => End - Start;

    /// <summary>Whether this is an anonymous mapping (vma_is_anonymous).</summary>
    public bool IsAnonymous => File is null && !IsDeviceMapping;

    /// <summary>Whether a device driver's mmap populated this area (it has vm_ops and no page cache behind it).</summary>
    public bool IsDeviceMapping { get; internal init; }

    /// <summary>Whether this is a shared mapping.</summary>
    public bool IsShared => (Flags & VmFlags.Shared) != 0;

    /// <summary>is_cow_mapping: private and potentially writable.</summary>
    public bool IsCow => (Flags & (VmFlags.Shared | VmFlags.MayWrite)) == VmFlags.MayWrite;

    /// <summary>Whether <paramref name="addr"/> lies inside the area.</summary>
    public bool Contains(ulong addr) => addr >= Start && addr < End;

    /// <summary>The file page that <paramref name="addr"/> maps (linear_page_index).</summary>
    public ulong FileIndex(ulong addr) => PgOff + ((addr - Start) >> PhysicalMemory.PageShift);

    internal Vma CloneRange(ulong start, ulong end) =>
        new(Mm, start, end, Flags, File, PgOff + ((start - Start) >> PhysicalMemory.PageShift)) { HasAnonPages = HasAnonPages, IsDeviceMapping = IsDeviceMapping };

    internal Vma CloneInto(Mm mm) => new(mm, Start, End, Flags, File, PgOff) { HasAnonPages = HasAnonPages, IsDeviceMapping = IsDeviceMapping };

    /// <inheritdoc />
    public override string ToString() =>
        $"[0x{Start:x}-0x{End:x}) {Flags}{(File is null ? "" : " " + File.Name + "+0x" + PgOff.ToString("x", System.Globalization.CultureInfo.InvariantCulture))}";
}
