using HmmEmu.Kernel;
using HmmEmu.Kernel.Bus;
using HmmEmu.Kernel.Notifiers;
using HmmEmu.Testing.Coherence;
using MyDevice.Driver;

namespace MyDevice.Tests;

/// <summary>
/// The driver as the coherence suite drives it: each device is the model on a PCI bus of its own with the driver
/// bound; an open device is one <see cref="MyDevContext"/>. Device reads and writes only (no migration, no atomics):
/// declare more <see cref="MirrorCapabilities"/> as the driver grows them.
/// </summary>
public sealed class MyDevTarget : IMirrorTarget
{
    /// <inheritdoc />
    public string Name => "MyDev";

    /// <inheritdoc />
    public MirrorCapabilities Capabilities => MirrorCapabilities.None;

    /// <inheritdoc />
    public IMirrorTargetDevice CreateDevice(HostKernel kernel, int unit)
    {
        var (bus, _, driver) = MyDevMachine.Plug(kernel, $"pci-mydev{unit}");
        return new Device(bus, driver);
    }

    private sealed class Device(PciBus bus, MyDevDriver driver) : IMirrorTargetDevice, IDisposable
    {
        private readonly MyDevDevice _device = driver.Devices[0];

        public int AllocatedDevicePages => 0;

        public IMirrorContext Open()
        {
            var err = _device.Open(out var mirror);
            return err == Errno.Ok ? new Context(mirror!) : throw new InvalidOperationException($"opening {_device} failed with {err}");
        }

        public void Remove() => bus.UnregisterDriver(driver);

        public void Dispose() => bus.Dispose();
    }

    private sealed class Context(MyDevContext mirror) : IMirrorContext
    {
        public MmuIntervalNotifier? Notifier => mirror.Notifier;

        public Errno Read(ulong addr, Span<byte> destination) => mirror.Read(addr, destination);

        public Errno Write(ulong addr, ReadOnlySpan<byte> source) => mirror.Write(addr, source);

        public Errno MigrateToDevice(ulong addr, ulong npages) => Errno.EOPNOTSUPP;

        public Errno MigrateToSystem(ulong addr, ulong npages) => Errno.EOPNOTSUPP;

        public Errno Exclusive(ulong addr, ulong npages, Span<byte> destination) => Errno.EOPNOTSUPP;

        public Errno AtomicAdd(ulong addr, long value, out long? previous)
        {
            previous = null;
            return Errno.EOPNOTSUPP;
        }

        public void Close() => mirror.Close();

        public IReadOnlyList<DeviceTranslation> Translations() =>
            [.. mirror.Mappings().Select(t => new DeviceTranslation(t.Address, t.Pfn, t.Writable, Atomic: false, "pt"))];
    }
}
