using System.Runtime.InteropServices;
using HmmEmu.Kernel;
using HmmEmu.Kernel.Fs;
using HmmEmu.Kernel.Vm;
using HmmEmu.Mirror;
using HmmEmu.Simulation;

namespace HmmEmu.Testing.Selftests;

/// <summary>
/// What a ported selftest sees: the fixture's open device files, the test process, and the helpers of
/// hmm-tests.c (buffer allocation, the ioctl wrapper, fork/wait, ASSERT_*). Helpers act as the calling process's
/// CPU, so they work from a forked child too.
/// </summary>
public sealed class SelftestContext
{
    /// <summary>HMM_BUFFER_SIZE: 4 MiB.</summary>
    public const ulong HmmBufferSize = 1024UL << 12;

    /// <summary>NTIMES.</summary>
    public const int NTimes = 10;

    internal SelftestContext(HostKernel kernel, Process process, IReadOnlyList<MirrorDevice> devices, SimRandom random)
    {
        Kernel = kernel;
        Process = process;
        Devices = devices;
        Random = random;
    }

    /// <summary>The machine.</summary>
    public HostKernel Kernel { get; }

    /// <summary>The test process (the parent, in fork tests).</summary>
    public Process Process { get; }

    /// <summary>The mirror devices /dev/hmm_dmirror0..N.</summary>
    public IReadOnlyList<MirrorDevice> Devices { get; }

    /// <summary>The fixture's first open device (self->fd / fd0).</summary>
    public MirrorFile Fd { get; internal set; } = null!;

    /// <summary>The fixture's second open device (fd1), for hmm2 tests.</summary>
    public MirrorFile? Fd1 { get; internal set; }

    /// <summary>The fixture variant's device number (0 for the private variants, 2 for the coherent ones).</summary>
    public int DeviceNumber { get; internal set; }

    /// <summary>hmm_is_coherent_type(variant->device_number).</summary>
    public bool IsCoherent => DeviceNumber >= 2;

    /// <summary>Seeded randomness (hmm_random).</summary>
    public SimRandom Random { get; }

    /// <summary>page_size.</summary>
    public ulong PageSize => 4096;

    /// <summary>page_shift.</summary>
    public int PageShift => 12;

    private static Process Current(HostKernel k) =>
        k.CurrentProcess ?? throw new InvalidOperationException("Selftest helpers must run on a thread of a simulated process.");

    /// <summary>The "STD" idiom: npages for HMM_BUFFER_SIZE and a buffer whose mirror holds <paramref name="mirrorBytes"/> (default: size).</summary>
    public HmmBuffer AllocBuffer(ulong size, ulong? mirrorBytes = null)
    {
        var p = Current(Kernel);
        ulong m = mirrorBytes ?? size;
        return new HmmBuffer
        {
            Size = size,
            MirrorSize = m,
            // malloc(): the mirror is ordinary anonymous memory of the calling process (at least a page, since the
            // real tests copy whole pages into small mirrors).
            Mirror = p.Map(Math.Max(m, PageSize), Prot.ReadWrite, MapFlags.PrivateAnonymous),
        };
    }

    /// <summary>mmap for the buffer; returns MAP_FAILED as 0 with the errno in <paramref name="err"/>.</summary>
    public ulong Mmap(ulong size, Prot prot, MapFlags flags, out Errno err, SimFile? file = null)
    {
        err = Current(Kernel).Mm.Mmap(0, size, prot, flags, out ulong addr, file);
        return err == Errno.Ok ? addr : 0;
    }

    /// <summary>hmm_buffer_free: unmaps the buffer (if still mapped) and frees the mirror.</summary>
    public void Free(HmmBuffer buffer)
    {
        var mm = Current(Kernel).Mm;
        if (buffer.Ptr != 0)
            mm.Munmap(buffer.Ptr, buffer.Size);
        mm.Munmap(buffer.Mirror, Math.Max(buffer.MirrorSize, PageSize));
    }

    /// <summary>hmm_dmirror_cmd: issues a mirror ioctl for <paramref name="npages"/> pages at buffer.ptr, retrying on EINTR; returns 0 or -errno.</summary>
    public int DmirrorCmd(MirrorFile fd, MirrorIoctl request, HmmBuffer buffer, ulong npages)
    {
        var cmd = new MirrorCommand { Addr = buffer.Ptr, Ptr = buffer.Mirror, NPages = npages };
        Errno err;
        while ((err = fd.Ioctl(request, ref cmd)) == Errno.EINTR)
        {
        }
        if (err != Errno.Ok)
            return -(int)err;
        buffer.CPages = cmd.CPages;
        buffer.Faults = cmd.Faults;
        return 0;
    }

    /// <summary>
    /// gup_test_exec: runs a gup_test command over <paramref name="size"/> bytes at <paramref name="addr"/> of the
    /// calling process with FOLL_WRITE plus <paramref name="flags"/>, then releases the pages. Returns 0 or -errno.
    /// </summary>
    public int GupTestExec(ulong addr, GupTestCommand command, ulong size, GupFlags flags = GupFlags.None)
    {
        var mm = Current(Kernel).Mm;
        var gupFlags = GupFlags.Write | flags;
        if (command == GupTestCommand.PinLongtermBenchmark)
            gupFlags |= GupFlags.LongTerm;
        var pages = new ulong[(size + PageSize - 1) >> PageShift];
        var err = mm.GetUserPages(addr, gupFlags, pages, out int pinned);
        for (int i = 0; i < pinned; i++)
            Kernel.Memory.PutPage(pages[i]);
        return err == Errno.Ok ? 0 : -(int)err;
    }

    /// <summary>hmm_open: opens /dev/hmm_dmirror<paramref name="unit"/> from the calling process.</summary>
    public MirrorFile Open(int unit)
    {
        var err = Devices[unit].Open(out var file);
        AssertEq(Errno.Ok, err, $"hmm_open({unit})");
        return file!;
    }

    /// <summary>hmm_create_file: an O_TMPFILE of <paramref name="size"/> bytes.</summary>
    public SimFile CreateFile(ulong size)
    {
        var f = Kernel.CreateTmpFile("hmm-tests");
        AssertEq(Errno.Ok, f.Truncate(size), "ftruncate");
        return f;
    }

    /// <summary>Writes ints: ptr[i] = <paramref name="value"/>(i) for i in [0, count), as the CPU of the calling process.</summary>
    public void WriteInts(ulong addr, int count, Func<int, int> value)
    {
        ArgumentNullException.ThrowIfNull(value);
        var ints = new int[count];
        for (int i = 0; i < count; i++)
            ints[i] = value(i);
        Current(Kernel).WriteBytes(addr, MemoryMarshal.AsBytes(ints.AsSpan()));
    }

    /// <summary>memset: fills <paramref name="count"/> bytes at <paramref name="addr"/> with <paramref name="value"/>.</summary>
    public void WriteBytesFill(ulong addr, int count, byte value)
    {
        var bytes = new byte[count];
        Array.Fill(bytes, value);
        Current(Kernel).WriteBytes(addr, bytes);
    }

    /// <summary>Reads <paramref name="count"/> ints at <paramref name="addr"/> as the CPU of the calling process.</summary>
    public int[] ReadInts(ulong addr, int count)
    {
        var ints = new int[count];
        Current(Kernel).ReadBytes(addr, MemoryMarshal.AsBytes(ints.AsSpan()));
        return ints;
    }

    /// <summary>Reads bytes at <paramref name="addr"/> as the CPU of the calling process.</summary>
    public byte[] ReadBytes(ulong addr, int count)
    {
        var b = new byte[count];
        Current(Kernel).ReadBytes(addr, b);
        return b;
    }

    /// <summary>ASSERT that ints[i] == <paramref name="expected"/>(i) for every i.</summary>
    public static void AssertInts(int[] ints, Func<int, int> expected, string what)
    {
        ArgumentNullException.ThrowIfNull(ints);
        ArgumentNullException.ThrowIfNull(expected);
        for (int i = 0; i < ints.Length; i++)
        {
            if (ints[i] != expected(i))
                throw new SelftestFailureException($"ASSERT_EQ({what}[{i}], {expected(i)}) failed: value is {ints[i]}");
        }
    }

    /// <summary>
    /// fork() then waitpid(): runs <paramref name="child"/> in a forked child process and returns whether it exited
    /// normally (WIFEXITED; a failed ASSERT in the child makes it abort). The child's address space is torn down
    /// when it exits.
    /// </summary>
    public bool ForkAndWait(Action<SelftestContext> child)
    {
        var parent = Current(Kernel);
        var childProcess = parent.Fork();
        Exception? failure = null;
        var t = childProcess.StartThread("child", () =>
        {
            try
            {
                child(this);
            }
            catch (SelftestFailureException e)
            {
                failure = e;
            }
            finally
            {
                childProcess.Exit();
            }
        });
        t.Join();
        ChildFailure = failure;
        return failure is null;
    }

    /// <summary>
    /// fork() a child that spins until killed (the hmm_cow_in_device child). Returns the "kill(pid, SIGTERM);
    /// waitpid()" action, which ends the child, tears its address space down and reports whether it died by the signal.
    /// </summary>
    public Func<bool> ForkSpinningChild()
    {
        var child = Current(Kernel).Fork();
        var killed = new System.Runtime.CompilerServices.StrongBox<bool>();
        bool diedBySignal = false;
        var t = child.StartThread("child", () =>
        {
            while (!Volatile.Read(ref killed.Value))
                Kernel.Scheduler.Sleep(10_000);
            diedBySignal = true;
            child.Exit();
        });
        return () =>
        {
            Volatile.Write(ref killed.Value, true);
            t.Join();
            return diedBySignal;
        };
    }

    /// <summary>The assertion that made the last forked child abort, if any.</summary>
    public Exception? ChildFailure { get; private set; }

    /// <summary>Starts a thread of the calling process (pthread_create).</summary>
    public SimThread StartThread(string name, Action body) => Current(Kernel).StartThread(name, body);

    /// <summary>ASSERT_EQ.</summary>
    public static void AssertEq<T>(T expected, T actual, string what)
    {
        if (!EqualityComparer<T>.Default.Equals(expected, actual))
            throw new SelftestFailureException($"ASSERT_EQ({what}, {expected}) failed: value is {actual}");
    }

    /// <summary>ASSERT_NE.</summary>
    public static void AssertNe<T>(T unexpected, T actual, string what)
    {
        if (EqualityComparer<T>.Default.Equals(unexpected, actual))
            throw new SelftestFailureException($"ASSERT_NE({what}, {unexpected}) failed");
    }
}
