using HmmEmu.Kernel.Bus;
using HmmEmu.Kernel.Locking;
using HmmEmu.Simulation;

namespace HmmEmu.Kernel.Tests.Bus;

/// <summary>Interrupt delivery: in interrupt context, on the bus's interrupt thread, spurious counting, free_irq and remove waiting for handlers.</summary>
public sealed class PciInterruptTests
{
    private static readonly PciDeviceId s_id = new(0x1af4, 0x1000);

    /// <summary>Plugs one fake device in slot 0 and registers <paramref name="driver"/>. May sleep.</summary>
    private static FakePciDevice PlugAndBind(PciBus bus, FakePciDriver driver)
    {
        var device = new FakePciDevice(s_id.VendorId, s_id.DeviceId);
        bus.Plug(0, device);
        bus.RegisterDriver(driver);
        return device;
    }

    private static FakePciDriver DriverWithHandler(int vector, IrqHandler handler) =>
        new("fake", s_id) { OnProbe = dev => dev.RequestIrq(vector, handler, "fake-irq") };

    [Theory]
    [InlineData(SchedulerMode.Deterministic)]
    [InlineData(SchedulerMode.Threaded)]
    public void Raise_HandlerTakesMutex_LockCheckerReportsSleepInInterrupt(SchedulerMode mode)
    {
        using var m = TestMachine.Create(mode: mode);
        using var bus = new PciBus(m.Kernel);
        var mutex = new KMutex(m.Kernel, "driver.lock");
        var driver = DriverWithHandler(0, _ =>
        {
            mutex.Lock();
            mutex.Unlock();
            return IrqReturn.Handled;
        });

        var ex = Assert.Throws<KernelRuleViolationException>(() => m.Run(() =>
        {
            var device = PlugAndBind(bus, driver);
            device.Raise(0);
            bus.SynchronizeInterrupts();
        }));

        Assert.Contains("interrupt context", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(SchedulerMode.Deterministic)]
    [InlineData(SchedulerMode.Threaded)]
    public void Raise_WithHandler_RunsHandlerOnInterruptThreadNotRaiser(SchedulerMode mode)
    {
        using var m = TestMachine.Create(mode: mode);
        using var bus = new PciBus(m.Kernel);
        SimThread? handlerThread = null;
        SimThread? raiserThread = null;
        var driver = DriverWithHandler(2, _ =>
        {
            handlerThread = Scheduler.CurrentThread;
            return IrqReturn.Handled;
        });

        m.Run(() =>
        {
            var device = PlugAndBind(bus, driver);
            raiserThread = Scheduler.CurrentThread;
            device.Raise(2);
            bus.SynchronizeInterrupts();
        });

        Assert.NotNull(handlerThread);
        Assert.NotSame(raiserThread, handlerThread);
        Assert.StartsWith("irq/", handlerThread!.Name, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(SchedulerMode.Deterministic)]
    [InlineData(SchedulerMode.Threaded)]
    public void Raise_ManyInterrupts_EachDeliveredOnceInOrder(SchedulerMode mode)
    {
        using var m = TestMachine.Create(mode: mode);
        using var bus = new PciBus(m.Kernel);
        var seen = new List<int>();
        var driver = new FakePciDriver("fake", s_id)
        {
            OnProbe = dev =>
            {
                for (int v = 0; v < 4; v++)
                {
                    var err = dev.RequestIrq(v, vec => { seen.Add(vec); return IrqReturn.Handled; }, "fake-irq");
                    if (err != Errno.Ok)
                        return err;
                }
                return Errno.Ok;
            },
        };

        m.Run(() =>
        {
            var device = PlugAndBind(bus, driver);
            for (int i = 0; i < 200; i++)
                device.Raise(i % 4);
            bus.SynchronizeInterrupts();
        });

        Assert.Equal(Enumerable.Range(0, 200).Select(i => i % 4), seen);
        Assert.Equal(200, bus.DeliveredInterrupts);
    }

    [Fact]
    public void Raise_VectorWithoutHandler_CountedAsSpurious()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);
        int calls = 0;
        var driver = DriverWithHandler(0, _ => { calls++; return IrqReturn.Handled; });

        m.Run(() =>
        {
            var device = PlugAndBind(bus, driver);
            device.Raise(1);
            bus.SynchronizeInterrupts();
        });

        Assert.Equal(0, calls);
        Assert.Equal(1, bus.SpuriousInterrupts);
    }

    [Fact]
    public void Raise_NoDriverBound_CountedAsSpurious()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);

        m.Run(() =>
        {
            var device = new FakePciDevice(s_id.VendorId, s_id.DeviceId);
            bus.Plug(0, device);
            device.Raise(0);
            bus.SynchronizeInterrupts();
        });

        Assert.Equal(1, bus.SpuriousInterrupts);
        Assert.Equal(0, bus.DeliveredInterrupts);
    }

    [Fact]
    public void Raise_HandlerReturnsNone_CountedAsUnhandled()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);
        var driver = DriverWithHandler(0, _ => IrqReturn.None);

        m.Run(() =>
        {
            var device = PlugAndBind(bus, driver);
            device.Raise(0);
            bus.SynchronizeInterrupts();
        });

        Assert.Equal(1, bus.UnhandledInterrupts);
    }

    [Fact]
    public void Raise_VectorBeyondDeviceCount_Throws()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);

        Assert.Throws<ArgumentOutOfRangeException>(() => m.Run(() =>
        {
            var device = new FakePciDevice(s_id.VendorId, s_id.DeviceId, vectors: 2);
            bus.Plug(0, device);
            device.Raise(2);
        }));
    }

    [Fact]
    public void RequestIrq_VectorOutOfRange_ReturnsEINVAL()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);
        var driver = DriverWithHandler(4, _ => IrqReturn.Handled); // the fake device has vectors 0..3

        m.Run(() => PlugAndBind(bus, driver));

        Assert.Empty(driver.Bound);
    }

    [Fact]
    public void RequestIrq_VectorAlreadyRequested_ReturnsEBUSY()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);
        Errno second = Errno.Ok;
        var driver = new FakePciDriver("fake", s_id)
        {
            OnProbe = dev =>
            {
                dev.RequestIrq(1, _ => IrqReturn.Handled, "first");
                second = dev.RequestIrq(1, _ => IrqReturn.Handled, "second");
                return Errno.Ok;
            },
        };

        m.Run(() => PlugAndBind(bus, driver));

        Assert.Equal(Errno.EBUSY, second);
    }

    [Fact]
    public void Raise_AfterFreeIrq_CountedAsSpurious()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);
        int calls = 0;
        var driver = DriverWithHandler(0, _ => { calls++; return IrqReturn.Handled; });

        m.Run(() =>
        {
            var device = PlugAndBind(bus, driver);
            driver.Bound.Single().FreeIrq(0);
            device.Raise(0);
            bus.SynchronizeInterrupts();
        });

        Assert.Equal(0, calls);
        Assert.Equal(1, bus.SpuriousInterrupts);
    }

    [Fact]
    public void FreeIrq_CalledFromItsOwnHandler_LockCheckerReportsSleepInInterrupt()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);
        PciDev? dev = null;
        var driver = DriverWithHandler(0, v => { dev!.FreeIrq(v); return IrqReturn.Handled; });

        var ex = Assert.Throws<KernelRuleViolationException>(() => m.Run(() =>
        {
            var device = PlugAndBind(bus, driver);
            dev = driver.Bound.Single();
            device.Raise(0);
            bus.SynchronizeInterrupts();
        }));

        Assert.Contains("interrupt context", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(SchedulerMode.Deterministic)]
    [InlineData(SchedulerMode.Threaded)]
    public void FreeIrq_HandlerRunning_ReturnsOnlyAfterHandlerReturned(SchedulerMode mode)
    {
        using var m = TestMachine.Create(mode: mode);
        using var bus = new PciBus(m.Kernel);
        int started = 0, release = 0, finished = 0, finishedWhenFreed = -1;
        var driver = DriverWithHandler(0, _ =>
        {
            Volatile.Write(ref started, 1);
            while (Volatile.Read(ref release) == 0)
                m.Kernel.Scheduler.Yield();
            Volatile.Write(ref finished, 1);
            return IrqReturn.Handled;
        });

        m.Run(() =>
        {
            var device = PlugAndBind(bus, driver);
            device.Raise(0);
            WaitFor(m, () => Volatile.Read(ref started) == 1);
            var releaser = m.Kernel.Scheduler.Spawn("releaser", () =>
            {
                for (int i = 0; i < 20; i++)
                    m.Kernel.Scheduler.Yield();
                Volatile.Write(ref release, 1);
            });
            driver.Bound.Single().FreeIrq(0);
            finishedWhenFreed = Volatile.Read(ref finished);
            releaser.Join();
        });

        Assert.Equal(1, finishedWhenFreed);
    }

    [Theory]
    [InlineData(SchedulerMode.Deterministic)]
    [InlineData(SchedulerMode.Threaded)]
    public void UnregisterDriver_HandlerRunning_RemoveWaitsForHandler(SchedulerMode mode)
    {
        using var m = TestMachine.Create(mode: mode);
        using var bus = new PciBus(m.Kernel);
        int started = 0, release = 0, finished = 0, finishedWhenRemoved = -1;
        var driver = DriverWithHandler(0, _ =>
        {
            Volatile.Write(ref started, 1);
            while (Volatile.Read(ref release) == 0)
                m.Kernel.Scheduler.Yield();
            Volatile.Write(ref finished, 1);
            return IrqReturn.Handled;
        });

        m.Run(() =>
        {
            var device = PlugAndBind(bus, driver);
            device.Raise(0);
            WaitFor(m, () => Volatile.Read(ref started) == 1);
            var releaser = m.Kernel.Scheduler.Spawn("releaser", () =>
            {
                for (int i = 0; i < 20; i++)
                    m.Kernel.Scheduler.Yield();
                Volatile.Write(ref release, 1);
            });
            bus.UnregisterDriver(driver);
            finishedWhenRemoved = Volatile.Read(ref finished);
            releaser.Join();
        });

        Assert.Equal(1, finishedWhenRemoved);
    }

    [Fact]
    public void FunctionLevelReset_InterruptStillQueued_IsDroppedNotDelivered()
    {
        using var m = TestMachine.Create();
        using var bus = new PciBus(m.Kernel);
        int calls = 0;
        var driver = DriverWithHandler(0, _ => { calls++; return IrqReturn.Handled; });

        m.Run(() =>
        {
            var device = PlugAndBind(bus, driver);
            device.Raise(0); // queued; in deterministic mode the interrupt thread cannot run before the reset below
            bus.FunctionLevelReset(0);
            bus.SynchronizeInterrupts();
        });

        Assert.Equal(0, calls);
        Assert.Equal(1, bus.DroppedInterrupts);
    }

    /// <summary>Yields (deterministic) or spins (threaded) until <paramref name="condition"/> holds.</summary>
    private static void WaitFor(TestMachine m, Func<bool> condition)
    {
        for (int i = 0; !condition(); i++)
        {
            if (i > 10_000_000)
                throw new TimeoutException("The condition never became true.");
            m.Kernel.Scheduler.Yield();
            if (m.Kernel.Scheduler.Mode == SchedulerMode.Threaded)
                Thread.Yield();
        }
    }
}
