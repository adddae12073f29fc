using HmmEmu.Kernel;
using HmmEmu.Kernel.Bus;

namespace HmmEmu.Hardware.Tests.Interrupts;

/// <summary>A driver for <see cref="MsixTestDevice"/>: maps BAR0 and requests every vector with a counting handler.</summary>
internal sealed class MsixTestDriver : IPciDriver
{
    private int _handled;

    public string Name => "msixtest";

    public IReadOnlyList<PciDeviceId> IdTable { get; } = [new(MsixTestDevice.Vendor, MsixTestDevice.Device)];

    public PciDev? Dev { get; private set; }

    public PciBar? Bar0 { get; private set; }

    public int Handled => Volatile.Read(ref _handled);

    /// <summary>Vectors handled, in order (written only by the interrupt thread).</summary>
    public List<int> Vectors { get; } = [];

    public Errno Probe(PciDev dev)
    {
        Dev = dev;
        Bar0 = dev.Bar(0);
        for (int v = 0; v < dev.VectorCount; v++)
        {
            var err = dev.RequestIrq(v, OnInterrupt, "msixtest");
            if (err != Errno.Ok)
                return err;
        }
        return Errno.Ok;
    }

    public void Remove(PciDev dev)
    {
        for (int v = 0; v < dev.VectorCount; v++)
            dev.FreeIrq(v);
    }

    // Runs in interrupt context: acknowledge the status bits (W1C) and count.
    private IrqReturn OnInterrupt(int vector)
    {
        uint status = Bar0!.Read32(MsixTestDevice.StatusOffset);
        Bar0.Write32(MsixTestDevice.StatusOffset, status);
        Vectors.Add(vector);
        Interlocked.Increment(ref _handled);
        return IrqReturn.Handled;
    }
}
