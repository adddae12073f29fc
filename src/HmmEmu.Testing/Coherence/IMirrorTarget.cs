using HmmEmu.Kernel;
using HmmEmu.Kernel.Notifiers;

namespace HmmEmu.Testing.Coherence;

/// <summary>
/// A driver under test that mirrors a process's address space the way the kernel's dmirror does: a device page
/// table filled by <c>hmm_range_fault</c> and kept coherent by an interval notifier. The coherence suite drives it
/// through this interface and checks its page table against the CPU's after every command. Implement it for your
/// own driver to run the suite against it (see docs/coherence.md).
/// </summary>
public interface IMirrorTarget
{
    /// <summary>A short name for reports ("mirror", "my-driver").</summary>
    string Name { get; }

    /// <summary>What the driver supports beyond device reads and writes; commands it lacks are never generated.</summary>
    MirrorCapabilities Capabilities { get; }

    /// <summary>Creates device number <paramref name="unit"/> on a freshly booted <paramref name="kernel"/>. Runs on the host thread.</summary>
    IMirrorTargetDevice CreateDevice(HostKernel kernel, int unit);
}

/// <summary>Optional operations of an <see cref="IMirrorTarget"/>.</summary>
[Flags]
public enum MirrorCapabilities
{
    /// <summary>Device reads and writes through the device page table only.</summary>
    None = 0,

    /// <summary>Migration to device memory and back (<see cref="IMirrorContext.MigrateToDevice"/>, <see cref="IMirrorContext.MigrateToSystem"/>).</summary>
    Migrate = 1 << 0,

    /// <summary>Device-exclusive access for device atomics (<see cref="IMirrorContext.Exclusive"/>).</summary>
    Exclusive = 1 << 1,

    /// <summary>Device atomics (<see cref="IMirrorContext.AtomicAdd"/>).</summary>
    Atomics = 1 << 2,

    /// <summary>
    /// The device's atomics are bus atomics (PCIe AtomicOps, our RDMA NIC's atomics on system memory): the memory system
    /// runs each read-modify-write indivisibly, so no CPU access can land between its read and its write and the device
    /// needs no exclusive mapping. INV-8's check that the device holds the page exclusively after an atomic is waived;
    /// the old value an atomic returns is still checked against the model.
    /// </summary>
    BusAtomics = 1 << 3,

    /// <summary>
    /// The device can be reset while in use (<see cref="IMirrorTargetDevice.Reset"/>): work it had in flight is aborted
    /// and reported as failed, and it goes on serving afterwards.
    /// </summary>
    Reset = 1 << 4,
}

/// <summary>One device of an <see cref="IMirrorTarget"/>.</summary>
public interface IMirrorTargetDevice
{
    /// <summary>Opens the device from the calling process (a simulated process thread), like open(2) of /dev/hmm_dmirrorN. May sleep.</summary>
    IMirrorContext Open();

    /// <summary>Device-memory pages currently allocated (0 if the device has none), for leak checks at the end of a run.</summary>
    int AllocatedDevicePages { get; }

    /// <summary>
    /// Resets the device while processes use it (<see cref="MirrorCapabilities.Reset"/>), as a driver does after a
    /// hang: work in flight is aborted and reported failed; mappings may be dropped and faulted in again. Runs on a
    /// simulated process thread and may sleep. Only called when the target declares the capability.
    /// </summary>
    void Reset() => throw new NotSupportedException("This device does not declare MirrorCapabilities.Reset.");

    /// <summary>
    /// Removes the device at the end of a run, after every process exited (unbind: rings, page-table pages and DMA
    /// buffers go back), so that the leak check that follows sees every page the driver allocated come back. Runs on a
    /// kernel thread and may sleep. A device that allocates nothing of its own needs nothing here.
    /// </summary>
    void Remove()
    {
    }

    /// <summary>
    /// What is wrong with the device itself at quiescence, one sentence per problem naming the invariant: a fault
    /// record nobody drained, a context or queue pair still stalled on a fault nobody answered (INV-13), a DMA with no
    /// completion or two (INV-12). Called on the host thread after every step, when no simulated thread runs; it must
    /// not change the device. A device with nothing to report keeps the default.
    /// </summary>
    IEnumerable<string> QuiescentProblems() => [];
}

/// <summary>
/// One open device: the mirror of the opening process's address space. Every method but <see cref="Translations"/>
/// runs on a thread of the opening process and may sleep.
/// </summary>
public interface IMirrorContext
{
    /// <summary>The notifier that keeps this mirror coherent (null once closed).</summary>
    MmuIntervalNotifier? Notifier { get; }

    /// <summary>
    /// Every interval notifier this open device holds on the process (empty once closed): one for a mirror, one per
    /// hardware context or memory region for a device that keeps several. INV-15 counts them; INV-4 follows each.
    /// </summary>
    IReadOnlyList<MmuIntervalNotifier> Notifiers => Notifier is { } n ? [n] : [];

    /// <summary>Device read of <c>destination.Length / 4096</c> pages at <paramref name="addr"/> through the device page table, faulting as needed.</summary>
    Errno Read(ulong addr, Span<byte> destination);

    /// <summary>Device write of <c>source.Length / 4096</c> pages at <paramref name="addr"/> through the device page table, faulting as needed.</summary>
    Errno Write(ulong addr, ReadOnlySpan<byte> source);

    /// <summary>Migrates <paramref name="npages"/> pages at <paramref name="addr"/> to device memory and maps them on the device.</summary>
    Errno MigrateToDevice(ulong addr, ulong npages);

    /// <summary>Migrates <paramref name="npages"/> pages at <paramref name="addr"/> back to system memory.</summary>
    Errno MigrateToSystem(ulong addr, ulong npages);

    /// <summary>Takes device-exclusive access to <paramref name="npages"/> pages at <paramref name="addr"/> (for device atomics) and reads them into <paramref name="destination"/>.</summary>
    Errno Exclusive(ulong addr, ulong npages, Span<byte> destination);

    /// <summary>
    /// Device atomic: adds <paramref name="value"/> to the 64-bit word at <paramref name="addr"/> through a mapping the
    /// device holds exclusively; <paramref name="previous"/> is the old value, or null for a device whose atomics do not
    /// return it (a GPU atomic-add kernel).
    /// </summary>
    Errno AtomicAdd(ulong addr, long value, out long? previous);

    /// <summary>close(2): removes the notifier and drops the device page table.</summary>
    void Close();

    /// <summary>
    /// Everything the device can currently translate (its page table and any translation cache in front of it), as
    /// the CPU would name the frames. Called on the host thread at quiescence, when no simulated thread runs.
    /// </summary>
    IReadOnlyList<DeviceTranslation> Translations();
}

/// <summary>
/// A translation a device holds: virtual page <see cref="Address"/> of the mirrored process maps frame
/// <see cref="Pfn"/> (a RAM pfn, or a device-private pfn as the CPU's device-private entry names it).
/// </summary>
/// <param name="Address">Page-aligned virtual address.</param>
/// <param name="Pfn">The frame.</param>
/// <param name="Writable">Whether the device may write through it.</param>
/// <param name="Atomic">Whether it is a device-exclusive (atomic) mapping.</param>
/// <param name="Source">Where the device holds it ("pt", "tlb").</param>
public readonly record struct DeviceTranslation(ulong Address, ulong Pfn, bool Writable, bool Atomic, string Source);
