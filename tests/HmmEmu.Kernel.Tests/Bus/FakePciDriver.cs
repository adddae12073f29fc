using HmmEmu.Kernel.Bus;

namespace HmmEmu.Kernel.Tests.Bus;

/// <summary>A driver for bus tests: binds to the given ids, runs an optional probe body, records probe/remove order.</summary>
internal sealed class FakePciDriver(string name, params PciDeviceId[] ids) : IPciDriver
{
    public string Name => name;

    public IReadOnlyList<PciDeviceId> IdTable => ids;

    /// <summary>Runs inside Probe; its result is Probe's result.</summary>
    public Func<PciDev, Errno> OnProbe { get; init; } = _ => Errno.Ok;

    /// <summary>Runs inside Remove.</summary>
    public Action<PciDev> OnRemove { get; init; } = _ => { };

    public List<int> ProbedSlots { get; } = [];

    public List<int> RemovedSlots { get; } = [];

    public List<PciDev> Bound { get; } = [];

    public Errno Probe(PciDev dev)
    {
        ProbedSlots.Add(dev.Slot);
        var err = OnProbe(dev);
        if (err == Errno.Ok)
            Bound.Add(dev);
        return err;
    }

    public void Remove(PciDev dev)
    {
        RemovedSlots.Add(dev.Slot);
        OnRemove(dev);
        Bound.Remove(dev);
    }
}
