namespace HmmEmu.Benchmarks;

/// <summary>The baseline of the migration benchmarks: the same number of bytes copied there and back with Span.CopyTo.</summary>
internal sealed class CopyBaseline
{
    private readonly byte[] _a;
    private readonly byte[] _b;

    public CopyBaseline(ulong bytes)
    {
        _a = new byte[bytes];
        _b = new byte[bytes];
        for (int i = 0; i < _a.Length; i++)
            _a[i] = (byte)(i * 31);
    }

    /// <summary>Copies the buffer to the other one and back.</summary>
    public void RoundTrip()
    {
        _a.AsSpan().CopyTo(_b);
        _b.AsSpan().CopyTo(_a);
    }
}
