using FsCheck;
using FsCheck.Fluent;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Testing.Coherence;

/// <summary>
/// Generates the next command from the shape model: weighted by kind, limited to the run's enabled kinds, and
/// aimed at pages that are mapped (and at the same few slots), so that commands collide.
/// </summary>
public static class CommandGenerator
{
    private static readonly Prot[] s_prots = [Prot.ReadWrite, Prot.ReadWrite, Prot.Read, Prot.None];

    /// <summary>The generator of the command after <paramref name="model"/>.</summary>
    public static Gen<CoherenceCommand> Next(ShapeModel model)
    {
        ArgumentNullException.ThrowIfNull(model);
        var single = Single(model);
        var choices = new List<(int, Gen<CoherenceCommand>)>(single);
        if ((model.Config.EffectiveKinds & CommandKinds.Concurrent) != 0)
        {
            var any = Gen.Frequency(single.ToArray());
            var pair =
                from a in any
                let after = a.Next(model)
                from b in Gen.Frequency((1, Gen.Frequency(Single(after).ToArray())), (2, Collide(after, a)))
                select (CoherenceCommand)new Concurrent(a, b);
            choices.Add((8, pair));
        }
        return Gen.Frequency(choices.ToArray());
    }

    private static List<(int, Gen<CoherenceCommand>)> Single(ShapeModel m)
    {
        var kinds = m.Config.EffectiveKinds;
        int[] live = [.. m.LiveProcesses()];
        int[] forked = [.. live.Where(p => p > 0)];
        int devices = m.Config.TotalDevices;
        int tag = m.NextTag;
        var list = new List<(int, Gen<CoherenceCommand>)>();
        void Add(CommandKinds kind, int weight, Gen<CoherenceCommand> gen)
        {
            if ((kinds & kind) != 0)
                list.Add((weight, gen));
        }

        var proc = Gen.Elements(live);
        var dev = Gen.Choose(0, devices - 1);
        Gen<int> DeviceWith(MirrorCapabilities need)
        {
            int[] able = [.. Enumerable.Range(0, devices).Where(d => (m.Config.CapabilitiesOf(d) & need) == need)];
            return able.Length == 0 ? dev : Gen.Elements(able);
        }
        Gen<(int P, int First, int Count)> Range(int maxCount) =>
            from p in proc
            from r in PageRange(m, p, maxCount)
            select (p, r.First, r.Count);
        Gen<(int P, int Page)> Page() =>
            from r in Range(1)
            select (r.P, r.First);
        var word = Gen.Choose(0, Layout.WordsPerPage - 1);
        var delta = Gen.Choose(1, 9);

        bool anyMapped = live.Any(p => Enumerable.Range(0, Layout.Pages).Any(pg => m.ProtOf(p, pg) is not null));
        Add(CommandKinds.Mmap, anyMapped ? 2 : 20,
            from p in proc
            from slot in Gen.Choose(0, Layout.Slots - 1)
            from n in Gen.Choose(1, Layout.PagesPerSlot)
            from prot in Gen.Elements(s_prots)
            select (CoherenceCommand)new MmapSlot(p, slot, n, prot));
        if (anyMapped)
        {
            Add(CommandKinds.CpuRead, 4, from x in Page() from w in word select (CoherenceCommand)new CpuRead(x.P, x.Page, w));
            Add(CommandKinds.CpuWrite, 5, from x in Page() from w in word select (CoherenceCommand)new CpuWrite(x.P, x.Page, w, tag));
            Add(CommandKinds.CpuAtomic, 1, from x in Page() from d in delta select (CoherenceCommand)new CpuAtomicAdd(x.P, x.Page, d));
            Add(CommandKinds.Munmap, 1, from r in Range(4) select (CoherenceCommand)new Munmap(r.P, r.First, r.Count));
            Add(CommandKinds.Mprotect, 2,
                from r in Range(4)
                from prot in Gen.Elements(s_prots)
                select (CoherenceCommand)new Mprotect(r.P, r.First, r.Count, prot));
            Add(CommandKinds.Madvise, 2, from r in Range(4) select (CoherenceCommand)new MadviseDontNeed(r.P, r.First, r.Count));
            Add(CommandKinds.DeviceRead, 5, from r in Range(4) from d in dev select (CoherenceCommand)new DeviceRead(r.P, d, r.First, r.Count));
            Add(CommandKinds.DeviceWrite, 5, from r in Range(4) from d in dev select (CoherenceCommand)new DeviceWrite(r.P, d, r.First, r.Count, tag));
            Add(CommandKinds.MigrateToDevice, 3, from r in Range(4) from d in DeviceWith(MirrorCapabilities.Migrate) select (CoherenceCommand)new MigrateToDevice(r.P, d, r.First, r.Count));
            Add(CommandKinds.MigrateToSystem, 2, from r in Range(4) from d in DeviceWith(MirrorCapabilities.Migrate) select (CoherenceCommand)new MigrateToSystem(r.P, d, r.First, r.Count));
            Add(CommandKinds.Exclusive, 2, from r in Range(2) from d in DeviceWith(MirrorCapabilities.Exclusive) select (CoherenceCommand)new DeviceExclusive(r.P, d, r.First, r.Count));
            Add(CommandKinds.DeviceAtomic, 2, from x in Page() from d in DeviceWith(MirrorCapabilities.Atomics) from v in delta select (CoherenceCommand)new DeviceAtomicAdd(x.P, d, x.Page, v));
        }
        if (live.Length < Layout.MaxProcesses)
            Add(CommandKinds.Fork, 1, from p in proc select (CoherenceCommand)new Fork(p, m.Processes.Length));
        if (forked.Length > 0)
        {
            Add(CommandKinds.Exit, 1, from p in Gen.Elements(forked) select (CoherenceCommand)new Exit(p));
            Add(CommandKinds.OomKill, 1, from p in Gen.Elements(forked) select (CoherenceCommand)new OomKill(p));
        }
        Add(CommandKinds.Reopen, 1, from p in proc from d in dev select (CoherenceCommand)new Reopen(p, d));
        Add(CommandKinds.DeviceReset, 1, from p in proc from d in DeviceWith(MirrorCapabilities.Reset) select (CoherenceCommand)new DeviceReset(p, d));
        if (list.Count == 0)
            list.Add((1, Gen.Constant<CoherenceCommand>(new MmapSlot(0, 0, Layout.PagesPerSlot, Prot.ReadWrite))));
        return list;
    }

    // A command aimed at the same process and pages as <a>: the invalidations, faults and writes that race it.
    private static Gen<CoherenceCommand> Collide(ShapeModel m, CoherenceCommand a)
    {
        if (a.Pages is not (int f, int n) || !m.Alive(a.Process))
            return Gen.Frequency(Single(m).ToArray());
        var kinds = m.Config.EffectiveKinds;
        int p = a.Process, tag = m.NextTag;
        var dev = Gen.Choose(0, m.Config.TotalDevices - 1);
        var list = new List<(int, Gen<CoherenceCommand>)>();
        void Add(CommandKinds kind, CoherenceCommand c)
        {
            if ((kinds & kind) != 0)
                list.Add((1, Gen.Constant(c)));
        }
        void AddGen(CommandKinds kind, Gen<CoherenceCommand> g)
        {
            if ((kinds & kind) != 0)
                list.Add((1, g));
        }
        Add(CommandKinds.Madvise, new MadviseDontNeed(p, f, n));
        Add(CommandKinds.Munmap, new Munmap(p, f, n));
        AddGen(CommandKinds.Mprotect, from prot in Gen.Elements(s_prots) select (CoherenceCommand)new Mprotect(p, f, n, prot));
        AddGen(CommandKinds.DeviceRead, from d in dev select (CoherenceCommand)new DeviceRead(p, d, f, n));
        AddGen(CommandKinds.DeviceWrite, from d in dev select (CoherenceCommand)new DeviceWrite(p, d, f, n, tag));
        AddGen(CommandKinds.MigrateToDevice, from d in dev select (CoherenceCommand)new MigrateToDevice(p, d, f, n));
        AddGen(CommandKinds.MigrateToSystem, from d in dev select (CoherenceCommand)new MigrateToSystem(p, d, f, n));
        Add(CommandKinds.CpuWrite, new CpuWrite(p, f, 0, tag));
        if (a is DeviceCommand { Device: var ad } && (m.Config.CapabilitiesOf(ad) & MirrorCapabilities.Reset) != 0)
            Add(CommandKinds.DeviceReset, new DeviceReset(p, ad));
        Add(CommandKinds.Fork, new Fork(p, m.Processes.Length));
        if (p > 0)
            Add(CommandKinds.OomKill, new OomKill(p));
        return list.Count == 0 ? Gen.Frequency(Single(m).ToArray()) : Gen.Frequency(list.ToArray());
    }

    // A range inside one slot, mostly in a slot that has mapped pages, often starting on a mapped page.
    private static Gen<(int First, int Count)> PageRange(ShapeModel m, int p, int maxCount)
    {
        int[] mappedPages = [.. Enumerable.Range(0, Layout.Pages).Where(pg => m.ProtOf(p, pg) is not null)];
        var start = mappedPages.Length == 0
            ? Gen.Choose(0, Layout.Pages - 1)
            : Gen.Frequency((4, Gen.Elements(mappedPages)), (1, Gen.Choose(0, Layout.Pages - 1)));
        return from first in start
               let room = Layout.PagesPerSlot - (first % Layout.PagesPerSlot)
               from count in Gen.Choose(1, Math.Min(maxCount, room))
               select (first, count);
    }
}
