/**
 * A fact several parts react to, told to each in the order they subscribed.
 * Subscribing is how a part built earlier hears of a part built later, so the
 * composition root never holds a nullable reference to fill in afterwards.
 */
export class Listeners<T> {
  private readonly all: Array<(value: T) => void> = [];

  add(listener: (value: T) => void): void {
    this.all.push(listener);
  }

  tell(value: T): void {
    for (const listener of this.all) listener(value);
  }
}
