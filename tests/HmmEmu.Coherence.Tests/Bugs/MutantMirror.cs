using HmmEmu.Kernel;
using HmmEmu.Testing.Coherence;

namespace HmmEmu.Coherence.Tests.Bugs;

/// <summary>
/// A compact dmirror-style driver with one switchable, realistic bug (<see cref="MirrorBug"/>), for measuring
/// whether the coherence suite catches it. A device page table (an XArray, as test_hmm) sits behind an 8-slot
/// software device TLB; both are kept coherent by an interval notifier. Supports device-exclusive access and device
/// atomics, not migration. With <see cref="MirrorBug.None"/> it is a correct driver.
/// </summary>
/// <param name="bug">The bug to carry.</param>
public sealed class MutantMirrorTarget(MirrorBug bug) : IMirrorTarget
{
    /// <summary>The bug this target's devices carry.</summary>
    public MirrorBug Bug { get; } = Enum.IsDefined(bug) ? bug : throw new ArgumentOutOfRangeException(nameof(bug), bug, "Not a MirrorBug value.");

    /// <inheritdoc />
    public string Name => $"mutant-mirror({Bug})";

    /// <inheritdoc />
    public MirrorCapabilities Capabilities => MirrorCapabilities.Exclusive | MirrorCapabilities.Atomics;

    /// <inheritdoc />
    public IMirrorTargetDevice CreateDevice(HostKernel kernel, int unit)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        return new MutantMirrorDevice(kernel, unit, Bug);
    }

    /// <inheritdoc />
    public override string ToString() => Name;
}

/// <summary>One mutant mirror device: opens contexts that mirror the opener's address space. Has no device memory.</summary>
internal sealed class MutantMirrorDevice(HostKernel kernel, int unit, MirrorBug bug) : IMirrorTargetDevice
{
    /// <summary>The kernel the device lives on.</summary>
    public HostKernel Kernel { get; } = kernel;

    /// <summary>The bug the device's contexts carry.</summary>
    public MirrorBug Bug { get; } = bug;

    /// <inheritdoc />
    public int AllocatedDevicePages => 0;

    /// <summary>
    /// open(2) from the calling process thread: a context with an interval notifier over the whole address space.
    /// Throws if called outside a process thread or if the registration fails. May sleep.
    /// </summary>
    public IMirrorContext Open()
    {
        var process = Kernel.CurrentProcess ?? throw new InvalidOperationException(
            $"{this}: Open must be called from a thread of a simulated process (Process.StartThread): the mirror binds to the caller's address space.");
        var context = new MutantMirrorContext(this, process.Mm);
        var err = context.Register();
        return err == Errno.Ok ? context : throw new InvalidOperationException($"{this}: registering the interval notifier on mm {process.Mm.Id} failed with {err}.");
    }

    /// <inheritdoc />
    public override string ToString() => $"mutant-mirror{unit}({Bug})";
}
