using HmmEmu.Kernel.Collections;
using HmmEmu.Kernel.Locking;
using HmmEmu.Kernel.Memory;
using HmmEmu.Kernel.Vm;

namespace HmmEmu.Kernel.Fs;

/// <summary>
/// A small in-memory regular file (an inode with its page cache): reads and writes go through page-cache pages,
/// which mmap maps into address spaces. A regular file writes dirty pages back to a simulated disk when reclaim
/// evicts them; a shmem file (the object behind shared anonymous memory) has no disk and is never evicted.
/// </summary>
/// <remarks>
/// Lock order: <c>mm.mmap_lock</c> → <c>file.i_mmap_rwsem</c> → page lock → <c>file.i_pages</c>.
/// </remarks>
public sealed class SimFile
{
    private readonly HostKernel _kernel;
    private readonly KSpinLock _pagesLock;
    private readonly KRwSemaphore _mmapSem;
    private readonly XArray<ulong> _pages;
    private readonly Dictionary<ulong, byte[]> _disk = [];
    private readonly List<Vma> _mappings = [];
    private ulong _size;

    internal SimFile(HostKernel kernel, int id, string name, bool shmem)
    {
        _kernel = kernel;
        Id = id;
        Name = name;
        IsShmem = shmem;
        _pagesLock = new KSpinLock(kernel, "file.i_pages");
        _mmapSem = new KRwSemaphore(kernel, "file.i_mmap_rwsem");
        _pages = new XArray<ulong>(kernel);
    }

    /// <summary>Inode number.</summary>
    public int Id { get; }

    /// <summary>The name shown in traces and VMA dumps.</summary>
    public string Name { get; }

    /// <summary>Whether this is a shmem object (no disk; never evicted).</summary>
    public bool IsShmem { get; }

    /// <summary>i_size in bytes.</summary>
    public ulong Size => Volatile.Read(ref _size);

    /// <summary>How many pages are in the page cache.</summary>
    public long CachedPages
    {
        get
        {
            using (_pagesLock.Scoped())
                return _pages.Count;
        }
    }

    /// <summary>How many pages have been written back to the simulated disk.</summary>
    public int DiskPages
    {
        get
        {
            lock (_disk)
                return _disk.Count;
        }
    }

    internal KRwSemaphore MmapSem => _mmapSem;

    internal HostKernel Kernel => _kernel;

    /// <summary>Sets i_size (ftruncate), growing only: shrinking would need truncation of mapped pages. May sleep.</summary>
    public Errno Truncate(ulong size)
    {
        _kernel.MightSleep("ftruncate");
        if (size < Size)
            return Errno.EINVAL;
        Volatile.Write(ref _size, size);
        return Errno.Ok;
    }

    /// <summary>pwrite(2): copies <paramref name="data"/> into the file at <paramref name="offset"/>, growing it. May sleep.</summary>
    public Errno Write(ReadOnlySpan<byte> data, ulong offset)
    {
        _kernel.MightSleep("pwrite");
        if (offset + (ulong)data.Length < offset)
            return Errno.EINVAL;
        while (!data.IsEmpty)
        {
            ulong index = offset >> PhysicalMemory.PageShift;
            int inPage = (int)(offset & (PhysicalMemory.PageSize - 1));
            int n = Math.Min(data.Length, PhysicalMemory.PageSize - inPage);
            var err = GetCachePage(index, out ulong pfn);
            if (err != Errno.Ok)
                return err;
            data[..n].CopyTo(_kernel.Memory.PageBytes(pfn).Slice(inPage, n));
            _kernel.Memory.SetFlags(pfn, PageFlags.Dirty);
            _kernel.Memory.PutPage(pfn);
            data = data[n..];
            offset += (ulong)n;
            if (offset > Size)
                Volatile.Write(ref _size, offset);
        }
        return Errno.Ok;
    }

    /// <summary>pread(2): copies up to <paramref name="buffer"/>.Length bytes from <paramref name="offset"/>; <paramref name="read"/> stops at end of file. May sleep.</summary>
    public Errno Read(Span<byte> buffer, ulong offset, out int read)
    {
        _kernel.MightSleep("pread");
        read = 0;
        while (read < buffer.Length && offset < Size)
        {
            ulong index = offset >> PhysicalMemory.PageShift;
            int inPage = (int)(offset & (PhysicalMemory.PageSize - 1));
            int n = (int)Math.Min((ulong)Math.Min(buffer.Length - read, PhysicalMemory.PageSize - inPage), Size - offset);
            var err = GetCachePage(index, out ulong pfn);
            if (err != Errno.Ok)
                return err;
            _kernel.Memory.PageBytes(pfn).Slice(inPage, n).CopyTo(buffer.Slice(read, n));
            _kernel.Memory.PutPage(pfn);
            read += n;
            offset += (ulong)n;
        }
        return Errno.Ok;
    }

    /// <summary>
    /// Finds or creates the page-cache page for file page <paramref name="index"/> (filemap_fault's lookup), reading
    /// it from disk or zero-filling it. Returns it with a reference the caller must drop. May sleep and reclaim.
    /// </summary>
    internal Errno GetCachePage(ulong index, out ulong pfn)
    {
        var mem = _kernel.Memory;
        using (_pagesLock.Scoped())
        {
            pfn = _pages.Load(index);
            if (pfn != 0)
            {
                mem.GetPage(pfn);
                return Errno.Ok;
            }
        }
        var err = mem.AllocPage(Gfp.HighUser | Gfp.Zero, out ulong fresh);
        if (err != Errno.Ok)
            return err;
        lock (_disk)
        {
            if (_disk.TryGetValue(index, out var saved))
                saved.CopyTo(mem.PageBytes(fresh));
        }
        mem.SetOwner(fresh, this, index);
        mem.SetFlags(fresh, PageFlags.PageCache | PageFlags.Uptodate);
        using (_pagesLock.Scoped())
        {
            pfn = _pages.Load(index);
            if (pfn != 0)
            {
                // Lost a race with another filler: use its page.
                mem.GetPage(pfn);
                mem.ClearFlags(fresh, PageFlags.PageCache);
                mem.PutPage(fresh);
                return Errno.Ok;
            }
            _pages.Store(index, fresh, Gfp.Atomic);
            mem.GetPage(fresh);    // the cache's reference; the allocation's one goes to the caller
        }
        if (!IsShmem)
            mem.LruAdd(fresh);
        pfn = fresh;
        return Errno.Ok;
    }

    /// <summary>
    /// Evicts an unmapped, clean-or-written-back page from the cache (reclaim's last step). Caller holds the page
    /// lock and one reference besides the cache's. Returns whether the page left the cache.
    /// </summary>
    internal bool TryEvict(ulong pfn)
    {
        var mem = _kernel.Memory;
        ulong index = mem.Index(pfn);
        using (_pagesLock.Scoped())
        {
            if (_pages.Load(index) != pfn || mem.MapCount(pfn) != 0 || mem.RefCount(pfn) != 2)
                return false;
            if (mem.HasFlags(pfn, PageFlags.Dirty))
            {
                lock (_disk)
                    _disk[index] = mem.PageBytes(pfn).ToArray();
                mem.ClearFlags(pfn, PageFlags.Dirty);
            }
            _pages.Erase(index);
            mem.ClearFlags(pfn, PageFlags.PageCache);
        }
        mem.PutPage(pfn);
        return true;
    }

    /// <summary>
    /// truncate_inode_pages for a shmem object whose last mapping went: the object is gone, so its pages are freed.
    /// Caller has zapped every mapping of it.
    /// </summary>
    internal void ReleaseIfUnmapped()
    {
        if (!IsShmem)
            return;
        using (_mmapSem.ScopedRead())
        {
            if (_mappings.Count > 0)
                return;
        }
        var mem = _kernel.Memory;
        var freed = new List<ulong>();
        using (_pagesLock.Scoped())
            _pages.EraseRange(0, XArray<ulong>.MaxIndex, (_, pfn) => freed.Add(pfn));
        foreach (ulong pfn in freed)
        {
            mem.ClearFlags(pfn, PageFlags.PageCache);
            mem.PutPage(pfn);
        }
    }

    // The VMAs mapping this file (i_mmap), for reverse mapping. Caller holds the i_mmap rwsem for write.
    internal void AddMapping(Vma vma)
    {
        _mmapSem.AssertWriteHeld("SimFile.AddMapping");
        _mappings.Add(vma);
    }

    internal void RemoveMapping(Vma vma)
    {
        _mmapSem.AssertWriteHeld("SimFile.RemoveMapping");
        _mappings.Remove(vma);
    }

    /// <summary>A copy of the VMAs mapping this file, in mapping order. Caller holds the i_mmap rwsem.</summary>
    internal Vma[] Mappings()
    {
        _mmapSem.AssertHeld("SimFile.Mappings");
        return [.. _mappings];
    }

    /// <inheritdoc />
    public override string ToString() => $"{Name} (ino {Id})";
}
