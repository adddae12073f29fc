using HmmEmu.Gpu;
using HmmEmu.Gpu.Driver;
using HmmEmu.Gpu.Model;
using HmmEmu.Hardware.Memory;
using HmmEmu.Hardware.Mmu;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Bus;
using HmmEmu.Kernel.Migration;
using HmmEmu.Kernel.Notifiers;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Testing.Coherence;

/// <summary>
/// The suite's view of our GPU (devices/Gpu): the register-level model on a PCI bus of its own, with the SVM driver
/// bound to it. A device read is a copy kernel from the tracked pages into a bounce buffer, a device write a copy kernel
/// the other way, migration is prefetch to VRAM or back, and the device atomic is the atomic-add kernel. The device's
/// translations are what its hardware would use: every page-table leaf of the tracked pages and every entry of both
/// engines' TLBs.
/// </summary>
/// <remarks>
/// A GPU context's error is sticky (a cancelled fault stops it), so each open device holds one GPU context per command
/// that may use it at once (two: a concurrent pair), and replaces a context that stopped before its next use, as an
/// application would after cudaErrorIllegalAddress.
/// </remarks>
public sealed class GpuTarget : IMirrorTarget
{
    /// <summary>VRAM per GPU (2 MiB: 512 pages, far more than the tracked pages of every process).</summary>
    public const ulong VramBytes = 2UL << 20;

    /// <inheritdoc />
    public string Name => "gpu";

    /// <inheritdoc />
    public MirrorCapabilities Capabilities => MirrorCapabilities.Migrate | MirrorCapabilities.Atomics | MirrorCapabilities.Reset;

    /// <inheritdoc />
    public IMirrorTargetDevice CreateDevice(HostKernel kernel, int unit)
    {
        ArgumentNullException.ThrowIfNull(kernel);
        // A small TLB, so that the tracked pages of three processes keep evicting one another.
        var model = new GpuModel(kernel, GpuModelOptions.Default with { VramBytes = VramBytes, TlbSets = 8, TlbWays = 2 });
        var bus = new PciBus(kernel, $"pci-gpu{unit}");
        var driver = new GpuDriver(kernel);
        kernel.Run(() =>
        {
            bus.Plug(0, model);
            if (bus.RegisterDriver(driver) != 1)
                throw new InvalidOperationException($"the GPU driver did not bind to GPU {unit}");
        });
        return new Device(bus, model, driver);
    }

    private sealed class Device(PciBus bus, GpuModel model, GpuDriver driver) : IMirrorTargetDevice, IDisposable
    {
        private readonly List<GpuContext> _opened = [];
        private readonly List<string> _problems = [];
        private bool _removed;

        public GpuModel Model => model;

        public GpuDevice Gpu => driver.Devices[0];

        public int AllocatedDevicePages => _removed ? 0 : Gpu.VramPages - Gpu.FreeVramPages;

        public IMirrorContext Open()
        {
            var process = Gpu.Kernel.CurrentProcess ?? throw new InvalidOperationException("Open must run on a process thread.");
            ulong bounce = process.Map(BounceBytes * Slots, Prot.ReadWrite, MapFlags.PrivateAnonymous);
            var context = new Context(this, process, bounce);
            for (int slot = 0; slot < Slots; slot++)
                context.OpenSlot(slot);
            return context;
        }

        // GpuDevice.Reset: an engine reset; contexts with unfinished work fail with DeviceReset (replaced on next use).
        public void Reset() => Gpu.Reset();

        public void Remove()
        {
            // The VRAM is gone with the driver: count what it still held before unbinding.
            int leaked = AllocatedDevicePages;
            if (leaked != 0)
                throw new InvalidOperationException($"GPU VRAM: {leaked} page(s) still allocated after every process exited (INV-15)");
            bus.UnregisterDriver(driver);
            _removed = true;
        }

        // INV-13 at quiescence: every fault record drained from the fault buffer, and no hardware context stalled on a
        // fault that no replay or cancel answered. (A context can still show STALLED at quiescence with its cancel
        // written: the run ends when only daemon threads are left, even one still busy in virtual time.)
        // INV-12 at quiescence: every command launched on a context that has not failed has finished (its fence was
        // written), and no fence went past what was launched; plus what the commands themselves saw (Note).
        public IEnumerable<string> QuiescentProblems()
        {
            lock (_problems)
            {
                foreach (var p in _problems)
                    yield return p;
                _problems.Clear();
            }
            if (_removed)
                yield break;
            var bar = model.Bar0;
            ulong get = bar.Read(GpuRegisters.FaultGet, 4), put = bar.Read(GpuRegisters.FaultPut, 4);
            if (get != put)
                yield return $"INV-13 (faults answered): the fault buffer still holds records (get {get}, put {put}) nobody drained";
            GpuContext[] opened;
            lock (_opened)
                opened = [.. _opened.Where(c => !c.IsClosed)];
            foreach (int id in model.UnansweredStalls())
                yield return $"INV-13 (faults answered): GPU hardware context {id} is stalled on a fault that no replay or cancel answered";
            foreach (var c in opened)
            {
                ulong launched = c.LaunchedFence, completed = c.CompletedFence;
                if (completed > launched)
                    yield return $"INV-12 (honest status): {c} reached fence {completed}, past the last command launched ({launched})";
                else if (completed < launched && c.Error.IsOk)
                    yield return $"INV-12 (work terminates): {c} is at fence {completed} of {launched} at quiescence, with no error: launched work never finished";
            }
        }

        public void Opened(GpuContext context)
        {
            lock (_opened)
            {
                _opened.RemoveAll(c => c.IsClosed);
                _opened.Add(context);
            }
        }

        public void Note(string problem)
        {
            lock (_problems)
                _problems.Add(problem);
        }

        public void Dispose()
        {
            bus.Dispose();
            model.Dispose();
        }
    }

    private const int Slots = CommandSlots.Count;
    private const ulong BounceBytes = Layout.PagesPerSlot * (ulong)Layout.PageSize;

    private sealed class Context(Device device, Process process, ulong bounceBase) : IMirrorContext
    {
        private readonly GpuContext?[] _gpu = new GpuContext?[Slots];
        private readonly CommandSlots _taken = new("GPU device");
        private bool _closed;

        public MmuIntervalNotifier? Notifier => null;

        public IReadOnlyList<MmuIntervalNotifier> Notifiers =>
            _closed ? [] : [.. _gpu.Where(c => c is { IsClosed: false }).Select(c => c!.Notifier)];

        public void OpenSlot(int slot)
        {
            var err = device.Gpu.TryOpen(process, out var gpu);
            if (err != Errno.Ok)
                throw new InvalidOperationException($"opening a GPU context failed with {err}");
            _gpu[slot] = gpu;
            device.Opened(gpu!);
        }

        // Takes a free slot; a slot whose context stopped on an error gets a fresh context first.
        private int Take()
        {
            int slot = _taken.Take();
            if (_gpu[slot] is { } stale && !stale.Error.IsOk)
            {
                stale.Close();
                OpenSlot(slot);
            }
            return slot;
        }

        private void Return(int slot) => _taken.Return(slot);

        private ulong Bounce(int slot) => bounceBase + ((ulong)slot * BounceBytes);

        // Runs a kernel launched by `launch` on slot's context and maps its status to an errno.
        private Errno Run(int slot, Func<GpuContext, GpuFence> launch)
        {
            var gpu = _gpu[slot]!;
            var fence = launch(gpu);
            var status = gpu.Wait(fence);
            if (status.IsOk && gpu.CompletedFence < fence.Value)
                device.Note($"INV-12 (honest status): {gpu} reported success for fence {fence.Value} at fence {gpu.CompletedFence}");
            return status.Error switch
            {
                GpuContextError.None => Errno.Ok,
                GpuContextError.FaultCancelled => Errno.EFAULT,
                _ => Errno.EIO,
            };
        }

        public Errno Read(ulong addr, Span<byte> destination)
        {
            int slot = Take();
            try
            {
                ulong bounce = Bounce(slot), bytes = (ulong)destination.Length;
                var err = Run(slot, g => g.Copy(bounce, addr, bytes));
                return err != Errno.Ok ? err : process.Mm.CopyFromUser(bounce, destination);
            }
            finally
            {
                Return(slot);
            }
        }

        public Errno Write(ulong addr, ReadOnlySpan<byte> source)
        {
            int slot = Take();
            try
            {
                ulong bounce = Bounce(slot), bytes = (ulong)source.Length;
                var err = process.Mm.CopyToUser(bounce, source);
                return err != Errno.Ok ? err : Run(slot, g => g.Copy(addr, bounce, bytes));
            }
            finally
            {
                Return(slot);
            }
        }

        public Errno MigrateToDevice(ulong addr, ulong npages) => Prefetch(addr, npages, GpuMemoryTarget.Vram);

        public Errno MigrateToSystem(ulong addr, ulong npages) => Prefetch(addr, npages, GpuMemoryTarget.System);

        private Errno Prefetch(ulong addr, ulong npages, GpuMemoryTarget target)
        {
            int slot = Take();
            try
            {
                return _gpu[slot]!.Prefetch(addr, npages * Layout.PageSize, target);
            }
            finally
            {
                Return(slot);
            }
        }

        public Errno Exclusive(ulong addr, ulong npages, Span<byte> destination) => Errno.EOPNOTSUPP;

        public Errno AtomicAdd(ulong addr, long value, out long? previous)
        {
            previous = null;            // the atomic-add kernel does not return the old value
            int slot = Take();
            try
            {
                return Run(slot, g => g.AtomicAdd(addr, 1, (ulong)value));
            }
            finally
            {
                Return(slot);
            }
        }

        public void Close()
        {
            _closed = true;
            foreach (var gpu in _gpu)
                gpu?.Close();
            if (!process.HasExited)
                process.Mm.Munmap(bounceBase, BounceBytes * Slots);
        }

        public IReadOnlyList<DeviceTranslation> Translations()
        {
            if (_closed)
                return [];
            var found = new List<DeviceTranslation>();
            var vram = device.Gpu.VramPagemap;
            var model = device.Model;
            var engines = new[] { (Mmu: model.ComputeMmu, Name: "compute-tlb"), (Mmu: model.CopyMmu, Name: "copy-tlb") };
            var tlbs = engines.Select(e => (Entries: e.Mmu.Tlb.Snapshot(), e.Name)).ToArray();
            foreach (var gpu in _gpu)
            {
                if (gpu is null || gpu.IsClosed)
                    continue;
                for (int page = 0; page < Layout.Pages; page++)
                {
                    ulong addr = Layout.PageAddress(page);
                    var walk = model.ComputeMmu.Inspect(gpu.Id, addr);
                    if (walk.HasPage)
                        found.Add(Translation(addr, walk.Page, vram, "pt"));
                }
                foreach (var (entries, name) in tlbs)
                {
                    foreach (var e in entries)
                    {
                        if (e.Asid == gpu.Id && Layout.IsTracked(e.Address))
                            found.Add(Translation(e.Address, e.Pte, vram, name));
                    }
                }
            }
            return found;
        }

        private static DeviceTranslation Translation(ulong addr, DevicePte pte, DevicePagemap? vram, string source)
        {
            // System aperture: the bus address is the physical address (no IOMMU). VRAM: an offset into the device's
            // memory, whose pages the CPU names by the device-private pfns registered for it.
            ulong pfn = pte.Aperture == Aperture.Vram ? (vram?.FirstPfn ?? 0) + pte.Pfn : pte.Pfn;
            var rights = pte.Permissions;
            return new DeviceTranslation(addr, pfn, (rights & PtePermissions.Write) != 0, (rights & PtePermissions.Atomic) != 0, source);
        }
    }
}
