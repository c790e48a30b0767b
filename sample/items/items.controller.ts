import { Controller, Get } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { CacheService } from 'nestjs-k8s';
import type { Repository } from 'typeorm';
import { Item } from '../database/item.entity.js';

/** How long the item list stays cached, in ms. */
const ITEMS_TTL_MS = 10_000;

@Controller('items')
export class ItemsController {
  constructor(
    @InjectRepository(Item) private readonly items: Repository<Item>,
    private readonly cache: CacheService,
  ) {}

  /** All items, read through the cache: the database is asked at most once per TTL per key. */
  @Get()
  list(): Promise<Item[]> {
    return this.cache.wrap(
      'items:all',
      () => this.items.find({ order: { id: 'ASC' } }),
      ITEMS_TTL_MS,
    );
  }
}
