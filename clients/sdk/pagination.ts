/**
 * A list's answer: the page itself (`data`, `has_more`, `next_cursor`), which also iterates over
 * every item of this page and the pages after it.
 */
export interface PageData<T> {
  data: T[];
  has_more: boolean;
  next_cursor: string | null;
}

export type Page<T, P extends PageData<T> = PageData<T>> = P &
  AsyncIterable<T> & {
    /** The next page, or null after the last. */
    nextPage(): Promise<Page<T, P> | null>;
    hasNextPage(): boolean;
  };

export function makePage<T, P extends PageData<T>>(data: P, fetchNext: (cursor: string) => Promise<Page<T, P>>): Page<T, P> {
  const hasNext = () => data.has_more && typeof data.next_cursor === 'string' && data.next_cursor !== '';
  const page = data as Page<T, P>;
  // Not enumerable: the page still serialises (and compares) as the gateway sent it.
  Object.defineProperties(page, {
    hasNextPage: { value: hasNext },
    nextPage: { value: () => (hasNext() ? fetchNext(data.next_cursor!) : Promise.resolve(null)) },
    [Symbol.asyncIterator]: {
      value: async function* (): AsyncGenerator<T> {
        let current: Page<T, P> | null = page;
        while (current) {
          for (const item of current.data) yield item;
          current = await current.nextPage();
        }
      },
    },
  });
  return page;
}

/**
 * What a list method returns: await it for the first page, or `for await` over it for every item
 * of every page (fetched as the loop reaches them).
 */
export class PagePromise<T, P extends PageData<T> = PageData<T>> implements PromiseLike<Page<T, P>>, AsyncIterable<T> {
  readonly [Symbol.toStringTag] = 'PagePromise';

  constructor(private readonly promise: Promise<Page<T, P>>) {}

  then<A = Page<T, P>, B = never>(
    onFulfilled?: ((value: Page<T, P>) => A | PromiseLike<A>) | null,
    onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.promise.then(onFulfilled, onRejected);
  }

  catch<B = never>(onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<Page<T, P> | B> {
    return this.promise.catch(onRejected);
  }

  finally(onFinally?: (() => void) | null): Promise<Page<T, P>> {
    return this.promise.finally(onFinally);
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    yield* await this.promise;
  }
}
